/**
 * ArpCache (services/lpar/net/ip/arp-cache.ts): resolution with waiting
 * packets and retries, and an entry past its time used while it is confirmed
 * (RFC 1122 2.3.2.1, Linux's STALE/PROBE) instead of dropped at once.
 */
import { describe, expect, it } from 'vitest';
import { ArpCache } from '../../services/lpar/net/ip/arp-cache.ts';

const TTL = 10_000;
const IP = 0x0a090003;
const MAC = Buffer.from([0xa3, 0, 0, 0, 0, 1]);
const MAC2 = Buffer.from([0xa3, 0, 0, 0, 0, 2]);

function cache() {
  const asked: number[] = [];
  const c = new ArpCache(TTL, (ip) => asked.push(ip));
  return { c, asked };
}

describe('ArpCache', () => {
  it('resolves: one request for any number of waiters, retried, each waiter told once either way', () => {
    const { c, asked } = cache();
    const got: string[] = [];
    c.resolve(IP, 0, (m) => got.push(`a ${m[5]}`), () => got.push('a failed'));
    c.resolve(IP, 1, (m) => got.push(`b ${m[5]}`), () => got.push('b failed'));
    expect(asked).toEqual([IP]);
    c.tick(300);
    expect(asked).toEqual([IP, IP]);
    c.learn(IP, MAC, 400);
    expect(got).toEqual(['a 1', 'b 1']);
    expect(c.lookup(IP, 500)).toEqual(MAC);

    const other = IP + 1;
    c.resolve(other, 0, () => got.push('resolved'), () => got.push('failed'));
    for (let t = 250; t <= 5000; t += 250) c.tick(t);
    expect(got.slice(2)).toEqual(['failed']);
    expect(c.stats.unresolved).toBe(1);
  });

  it('an entry past its time is still used while a request confirms it; the answer makes it fresh again', () => {
    const { c, asked } = cache();
    c.learn(IP, MAC, 0);
    expect(c.lookup(IP, TTL - 1)).toEqual(MAC);
    expect(asked).toEqual([]);
    // Stale: the packet goes to the known MAC, and one request (not one per packet) asks again.
    expect(c.lookup(IP, TTL + 10)).toEqual(MAC);
    expect(c.lookup(IP, TTL + 20)).toEqual(MAC);
    expect(asked).toEqual([IP]);
    expect(c.list(TTL + 20)).toEqual([{ ip: IP, mac: MAC, expiresInMs: 0, stale: true }]);
    // The neighbour answers with a new MAC (it moved): that one is used from now on.
    c.learn(IP, MAC2, TTL + 30);
    expect(c.lookup(IP, TTL + 40)).toEqual(MAC2);
    expect(c.list(TTL + 40)).toEqual([{ ip: IP, mac: MAC2, expiresInMs: TTL - 10, stale: false }]);
    expect(asked).toEqual([IP]);
  });

  it('a stale entry nobody confirms is dropped after the last try; one unused for another expiry time is forgotten', () => {
    const { c, asked } = cache();
    c.learn(IP, MAC, 0);
    expect(c.lookup(IP, TTL)).toEqual(MAC);
    for (let t = TTL + 250; t <= TTL + 5000; t += 250) c.tick(t);
    expect(asked.length).toBeGreaterThan(1);
    expect(c.lookup(IP, TTL + 5001)).toBeUndefined();
    expect(c.list(TTL + 5001)).toEqual([]);

    const other = IP + 1;
    c.learn(other, MAC, 0);
    expect(c.lookup(other, 2 * TTL)).toBeUndefined();
    expect(c.list(2 * TTL)).toEqual([]);
  });
});
