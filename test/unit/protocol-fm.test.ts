import { describe, expect, it } from 'vitest';
import { decodeFmReply, decodeFmRequest, decodeNodeNotice, decodeSwitchNotice, type FmRequest } from '../../shared/protocol/fm.ts';

const rec = { id: 3, a: 'lpar1', b: 'lpar2', purpose: 'lan:blue', viA: 4, viB: 5 };

describe('fabric manager protocol', () => {
  it('decodes every request, with "data" for an operator\'s RVI that names no purpose', () => {
    const good: FmRequest[] = [
      { t: 'rvi-create', a: 'lpar1', b: 'lpar2', purpose: 'smcr-a' },
      { t: 'rvi-destroy', id: 3 },
      { t: 'location-set', endpoint: '10.1.0.2', node: 'lpar1' },
      { t: 'rvi-list' },
      { t: 'locate', endpoint: '10.1.0.2' },
      { t: 'fm-status' },
    ];
    for (const m of good) expect(decodeFmRequest({ ...m, rq: 1 })).toEqual({ ok: true, value: m });
    expect(decodeFmRequest({ t: 'rvi-create', a: 'lpar1', b: 'lpar2' })).toEqual({ ok: true, value: { t: 'rvi-create', a: 'lpar1', b: 'lpar2', purpose: 'data' } });
  });

  it('refuses a malformed request with the reason', () => {
    const cases: Array<[Record<string, unknown> & { t: string }, RegExp]> = [
      [{ t: 'rvi-create', a: 'lpar1', b: 7, purpose: 'x' }, /field "b": a string/],
      [{ t: 'rvi-create', a: 'lpar1', b: 'lpar2', purpose: 'p'.repeat(65) }, /field "purpose": a string of 1\.\.64/],
      [{ t: 'rvi-create', a: '', b: 'lpar2', purpose: 'x' }, /field "a": a string of 1\.\.64 characters \(got ""\)/],
      [{ t: 'rvi-destroy', id: '3' }, /field "id": an integer/],
      [{ t: 'locate' }, /"endpoint"/],
      [{ t: 'rvi-add' }, /fabric manager: field "t": .*\(got "rvi-add"\)/],
    ];
    for (const [m, reason] of cases) {
      const d = decodeFmRequest(m);
      expect(d.ok).toBe(false);
      if (!d.ok) expect(d.reason).toMatch(reason);
    }
  });

  it('checks replies against the request they answer', () => {
    expect(decodeFmReply('rvi-create', { t: 'rvi-create-ok', re: 1, rvi: rec })).toEqual({ ok: true, value: { rvi: rec } });
    expect(decodeFmReply('locate', { t: 'locate-ok', endpoint: '10.9.9.9', node: null, cec: null })).toEqual({ ok: true, value: { endpoint: '10.9.9.9', node: null, cec: null } });
    expect(decodeFmReply('rvi-list', { t: 'rvi-list-ok', rvis: [rec] })).toEqual({ ok: true, value: { rvis: [rec] } });
    const wrong = decodeFmReply('rvi-create', { t: 'rvi-list-ok', rvis: [] });
    expect(wrong.ok === false && wrong.reason).toMatch(/reply to "rvi-create" is "rvi-list-ok"/);
    const bad = decodeFmReply('rvi-list', { t: 'rvi-list-ok', rvis: [{ ...rec, viA: 'x' }] });
    expect(bad.ok === false && bad.reason).toMatch(/"rvis\[0\]\.viA"/);
  });

  it('checks what a node and a switch are told', () => {
    const welcome = { t: 'welcome', port: 3, planes: [{ name: 'a', url: 'unix:/a' }, { name: 'b', url: 'unix:/b' }], rclan: { heartbeatMs: 50, deadAfterMs: 200, undeliverableAfterMs: 2000, window: 64 }, rvis: [{ id: 1, vi: 2, peer: 'cn1', purpose: 'mgmt' }] };
    expect(decodeNodeNotice(welcome)).toEqual({ ok: true, value: welcome });
    const onePlane = decodeNodeNotice({ ...welcome, planes: [welcome.planes[0]] });
    expect(onePlane.ok === false && onePlane.reason).toMatch(/field "planes": an array of 2 /);
    expect(decodeNodeNotice({ t: 'rvi-del', vi: 0 }).ok).toBe(false);
    expect(decodeSwitchNotice({ t: 'vi-add', entries: [[1, 2, 3, 4, 5]] })).toEqual({ ok: true, value: { t: 'vi-add', entries: [[1, 2, 3, 4, 5]] } });
    const short = decodeSwitchNotice({ t: 'vi-add', entries: [[1, 2, 3]] });
    expect(short.ok === false && short.reason).toMatch(/field "entries\[0\]": \[rvi, portA, viA, portB, viB\]/);
    expect(decodeSwitchNotice({ t: 'welcome', ports: [['lpar1', 1]], vis: [] }).ok).toBe(true);
    expect(decodeSwitchNotice({ t: 'welcome', ports: [['lpar1', 'one']], vis: [] }).ok).toBe(false);
  });
});
