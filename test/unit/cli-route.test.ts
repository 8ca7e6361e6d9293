import { describe, expect, it } from 'vitest';
import { formatRoute, parseRouteWords, routePrefix } from '../../scripts/cli/commands/route.ts';
import { UsageError } from '../../shared/runtime/options.ts';

// `lparlab route LPAR ...`: ip-route words to the lpar's `route` admin verb (areas.md contract).
describe('lparlab route arguments', () => {
  it('show is the default, as ip route', () => {
    expect(parseRouteWords([])).toEqual({ t: 'route', op: 'show' });
    expect(parseRouteWords(['show'])).toEqual({ t: 'route', op: 'show' });
  });

  it('add takes a prefix with via and/or dev, in either order', () => {
    expect(parseRouteWords(['add', '10.2.0.0/24', 'via', '10.1.0.3'])).toEqual({ t: 'route', op: 'add', prefix: '10.2.0.0/24', via: '10.1.0.3' });
    expect(parseRouteWords(['add', '10.2.0.0/24', 'dev', 'green', 'via', '10.1.0.3'])).toEqual({ t: 'route', op: 'add', prefix: '10.2.0.0/24', via: '10.1.0.3', dev: 'green' });
    expect(parseRouteWords(['add', '10.2.0.0/24', 'dev', 'green'])).toEqual({ t: 'route', op: 'add', prefix: '10.2.0.0/24', dev: 'green' });
  });

  it('default is 0.0.0.0/0 and a bare address a host route', () => {
    expect(parseRouteWords(['add', 'default', 'via', '10.1.0.3'])).toEqual({ t: 'route', op: 'add', prefix: '0.0.0.0/0', via: '10.1.0.3' });
    expect(routePrefix('10.2.0.9')).toBe('10.2.0.9/32');
  });

  it('del takes a prefix and an optional via (delete is the same)', () => {
    expect(parseRouteWords(['del', '10.2.0.0/24'])).toEqual({ t: 'route', op: 'del', prefix: '10.2.0.0/24' });
    expect(parseRouteWords(['delete', 'default', 'via', '10.1.0.3'])).toEqual({ t: 'route', op: 'del', prefix: '0.0.0.0/0', via: '10.1.0.3' });
  });

  it('refuses what does not fit, naming it', () => {
    const cases: Array<[string[], RegExp]> = [
      [['add'], /needs a prefix/],
      [['add', '10.2.0.0/24'], /needs "via IP" or "dev VLAN"/],
      [['add', '10.2.0.0/33', 'via', '10.1.0.3'], /"10\.2\.0\.0\/33" is not a prefix/],
      [['add', '10.2.0.1/24', 'via', '10.1.0.3'], /host bits set: did you mean 10\.2\.0\.0\/24/],
      [['add', '10.2.0.0/24', 'via'], /"via" needs an address/],
      [['add', '10.2.0.0/24', 'via', '10.1.0.300'], /via "10\.1\.0\.300" is not an IPv4 address/],
      [['add', '10.2.0.0/24', 'dev'], /"dev" needs a virtual LAN name/],
      [['add', '10.2.0.0/24', 'via', '10.1.0.3', 'via', '10.1.0.4'], /unexpected "via"/],
      [['add', '10.2.0.0/24', 'metric', '5'], /unexpected "metric"/],
      [['del', '10.2.0.0/24', 'dev', 'green'], /unexpected "dev"/],
      [['show', 'all'], /unexpected "all"/],
      [['flush'], /unknown operation "flush"/],
    ];
    for (const [words, msg] of cases) {
      expect(() => parseRouteWords(words), words.join(' ')).toThrow(UsageError);
      expect(() => parseRouteWords(words), words.join(' ')).toThrow(msg);
    }
  });

  it('prints as ip route does', () => {
    expect(formatRoute({ prefix: '0.0.0.0/0', via: '10.1.0.3', dev: 'blue', source: 'static', mtu: 8992 })).toBe('default via 10.1.0.3 dev blue proto static mtu 8992');
    expect(formatRoute({ prefix: '10.1.0.0/24', dev: 'blue', source: 'connected', mtu: 8992 })).toBe('10.1.0.0/24 dev blue proto connected mtu 8992');
  });
});
