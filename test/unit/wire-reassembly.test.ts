import { describe, expect, it } from 'vitest';
import { IPV4_HEADER, IpProto, Ipv4Packet, emitIpv4Header, fragmentPlan, parseIp } from '../../shared/wire/index.ts';
import { Reassembler } from '../../services/lpar/net/ip/fragments.ts';
import { prng as rng, randomBytes, shuffle } from '../helpers/prng.ts';


const SRC = parseIp('10.0.0.5');
const DST = parseIp('10.0.0.6');

/** One fragment as it would arrive: its own buffer, parsed. */
function fragment(data: Buffer, offset: number, more: boolean, id = 1, src = SRC): Ipv4Packet {
  const buf = Buffer.alloc(IPV4_HEADER + data.length);
  emitIpv4Header(buf, 0, {
    src,
    dst: DST,
    protocol: IpProto.Udp,
    payloadLength: data.length,
    id,
    fragmentOffset: offset,
    moreFragments: more,
    checksum: true,
  });
  data.copy(buf, IPV4_HEADER);
  return Ipv4Packet.parse(buf);
}

function fragmentsOf(payload: Buffer, mtu: number, id = 1): Ipv4Packet[] {
  return fragmentPlan(payload.length, mtu).map((f) => fragment(payload.subarray(f.offset, f.offset + f.length), f.offset, f.more, id));
}

const opts = { timeoutMs: 30_000, maxDatagrams: 64, maxBytes: 4 * 65536 };

/** Pushes all fragments; expects completion exactly at the last and clobbers each fragment after the push. */
function reassemble(r: Reassembler, frags: Ipv4Packet[], now = 0): Buffer {
  let whole: Buffer | undefined;
  frags.forEach((f, i) => {
    const out = r.push(f, now);
    f.buffer.fill(0xee);
    if (i < frags.length - 1) expect(out).toBeUndefined();
    else whole = out;
  });
  expect(whole).toBeDefined();
  return whole as Buffer;
}

describe('Reassembler', () => {
  it('passes an unfragmented packet through', () => {
    const r = new Reassembler(opts);
    const p = fragment(Buffer.from('whole'), 0, false);
    expect(p.isFragment).toBe(false);
    expect(r.push(p, 0)?.toString()).toBe('whole');
    expect(r.pending).toBe(0);
  });

  it('reassembles random datagrams in order, reversed and shuffled, byte-exact', () => {
    const r = rng(1);
    const re = new Reassembler(opts);
    for (let n = 0; n < 60; n++) {
      const size = n === 0 ? 65515 : 1 + ((r() * 12000) | 0);
      const mtu = 68 + ((r() * 3000) | 0);
      const payload = randomBytes(r, size);
      for (const order of ['in', 'reverse', 'shuffle'] as const) {
        let frags = fragmentsOf(payload, mtu, n);
        if (order === 'reverse') frags.reverse();
        if (order === 'shuffle') frags = shuffle(r, frags);
        if (frags.length === 1) {
          expect(re.push(frags[0], 0)?.equals(payload)).toBe(true);
          continue;
        }
        expect(reassemble(re, frags).equals(payload)).toBe(true);
      }
    }
    expect(re.pending).toBe(0);
    expect(re.bytes).toBe(0);
    expect(re.stats.dropped).toBe(0);
  });

  it('keeps interleaved datagrams apart by (src, dst, protocol, id)', () => {
    const r = rng(2);
    const re = new Reassembler(opts);
    const a = randomBytes(r, 5000);
    const b = randomBytes(r, 5000);
    const fa = fragmentsOf(a, 576, 7);
    const fb = fragmentPlan(b.length, 576).map((f) => fragment(b.subarray(f.offset, f.offset + f.length), f.offset, f.more, 7, SRC + 1));
    const done: Buffer[] = [];
    for (let i = 0; i < fa.length; i++) {
      for (const f of [fb[i], fa[fa.length - 1 - i]]) {
        const out = re.push(f, 0);
        if (out) done.push(out);
      }
    }
    expect(done.length).toBe(2);
    expect(done.some((d) => d.equals(a))).toBe(true);
    expect(done.some((d) => d.equals(b))).toBe(true);
  });

  it('ignores duplicate fragments', () => {
    const r = rng(3);
    const re = new Reassembler(opts);
    const payload = randomBytes(r, 4000);
    const frags = fragmentsOf(payload, 1000);
    for (const f of frags.slice(0, -1)) {
      expect(re.push(f, 0)).toBeUndefined();
      expect(re.push(f, 0)).toBeUndefined();
    }
    expect(re.bytes).toBe(frags.slice(0, -1).reduce((s, f) => s + f.payload.length, 0));
    expect(re.push(frags[frags.length - 1], 0)?.equals(payload)).toBe(true);
    expect(re.stats.completed).toBe(1);
  });

  it('resolves overlapping fragments with different data: first arrived wins', () => {
    const r = rng(4);
    for (let n = 0; n < 200; n++) {
      const re = new Reassembler(opts);
      const size = 9 + ((r() * 3000) | 0);
      const units = Math.ceil(size / 8);
      const model = Buffer.alloc(size);
      const filled = new Uint8Array(size);
      // A covering plan plus random overlapping extras, each with its own random data.
      const frags: Array<{ off: number; data: Buffer; more: boolean }> = [];
      // An MTU below the size, so even the covering plan is fragmented.
      const mtu = IPV4_HEADER + 8 * (1 + Math.floor((r() * (units - 1)) / 2));
      for (const f of fragmentPlan(size, mtu)) frags.push({ off: f.offset, data: randomBytes(r, f.length), more: f.more });
      const extras = 1 + ((r() * 8) | 0);
      for (let k = 0; k < extras; k++) {
        const startUnit = (r() * units) | 0;
        const end = Math.min(size, (startUnit + 1 + ((r() * 40) | 0)) * 8);
        // RFC 791: only a fragment ending the datagram may be other than a multiple of 8 bytes long.
        const lastData = end === size && (r() < 0.3 || size % 8 !== 0);
        frags.push({ off: startUnit * 8, data: randomBytes(r, end - startUnit * 8), more: !lastData });
      }
      shuffle(r, frags);
      let sawLast = false;
      let missing = size;
      let result: Buffer | undefined;
      for (const f of frags) {
        expect(result).toBeUndefined();
        for (let i = 0; i < f.data.length; i++) {
          if (!filled[f.off + i]) {
            filled[f.off + i] = 1;
            model[f.off + i] = f.data[i];
            missing--;
          }
        }
        sawLast ||= !f.more;
        result = re.push(fragment(f.data, f.off, f.more), 0);
        expect(result !== undefined).toBe(sawLast && missing === 0);
        if (result) break;
      }
      expect(result?.equals(model)).toBe(true);
      expect(re.bytes).toBe(0);
    }
  });

  it('times out partial datagrams by the arrival of their first fragment', () => {
    const r = rng(5);
    const re = new Reassembler({ ...opts, timeoutMs: 1000 });
    const payload = randomBytes(r, 3000);
    const frags = fragmentsOf(payload, 1500);
    expect(re.push(frags[0], 0)).toBeUndefined();
    expect(re.push(frags[1], 900)).toBeUndefined();
    expect(re.expire(999)).toBe(0);
    expect(re.expire(1000)).toBe(1);
    expect(re.stats.timedOut).toBe(1);
    expect(re.pending).toBe(0);
    expect(re.bytes).toBe(0);
    // The rest alone does not complete it.
    expect(re.push(frags[2], 1001)).toBeUndefined();
    expect(re.pending).toBe(1);

    // A fragment arriving for a stale datagram starts afresh even before expire() runs.
    const re2 = new Reassembler({ ...opts, timeoutMs: 1000 });
    re2.push(frags[0], 0);
    re2.push(frags[1], 0);
    expect(re2.push(frags[2], 5000)).toBeUndefined();
    expect(re2.stats.timedOut).toBe(1);
    expect(re2.pending).toBe(1);
  });

  it('drops a datagram whose fragments reach past 65535 bytes', () => {
    const re = new Reassembler(opts);
    expect(re.push(fragment(Buffer.alloc(16), 0, true), 0)).toBeUndefined();
    expect(re.push(fragment(Buffer.alloc(16), 65512, false), 0)).toBeUndefined();
    expect(re.stats.dropped).toBe(1);
    expect(re.pending).toBe(0);
    expect(re.bytes).toBe(0);
    // 65515 bytes of payload is the largest that fits with a 20-byte header.
    const ok = fragment(Buffer.alloc(65515 - 65512), 65512, false, 2);
    expect(re.push(ok, 0)).toBeUndefined();
    expect(re.stats.dropped).toBe(1);
  });

  it('drops datagrams whose fragments disagree on the end', () => {
    const re = new Reassembler(opts);
    re.push(fragment(Buffer.alloc(8), 16, false), 0);
    re.push(fragment(Buffer.alloc(8), 32, false), 0);
    expect(re.stats.dropped).toBe(1);
    re.push(fragment(Buffer.alloc(8), 16, false, 2), 0);
    re.push(fragment(Buffer.alloc(24), 8, true, 2), 0);
    expect(re.stats.dropped).toBe(2);
    re.push(fragment(Buffer.alloc(16), 32, true, 3), 0);
    re.push(fragment(Buffer.alloc(8), 16, false, 3), 0);
    expect(re.stats.dropped).toBe(3);
    expect(re.pending).toBe(0);
    expect(re.bytes).toBe(0);
  });

  it('bounds the bytes held: a datagram larger than maxBytes is dropped', () => {
    const r = rng(6);
    const re = new Reassembler({ ...opts, maxBytes: 4000 });
    const frags = fragmentsOf(randomBytes(r, 6000), 1500);
    expect(re.push(frags[0], 0)).toBeUndefined();
    expect(re.push(frags[1], 0)).toBeUndefined();
    expect(re.bytes).toBe(2960);
    expect(re.push(frags[2], 0)).toBeUndefined();
    expect(re.stats.dropped).toBe(1);
    expect(re.bytes).toBe(0);
    expect(re.pending).toBe(0);
  });

  it('bounds the bytes held: the oldest partial datagrams make room for a newer one', () => {
    const r = rng(7);
    const re = new Reassembler({ ...opts, maxBytes: 4000 });
    const a = fragmentsOf(randomBytes(r, 4000), 1500, 1);
    const bPayload = randomBytes(r, 4000);
    const b = fragmentsOf(bPayload, 1500, 2);
    re.push(a[0], 0);
    re.push(a[1], 0);
    expect(re.push(b[0], 1)).toBeUndefined();
    expect(re.stats.dropped).toBe(1);
    expect(re.bytes).toBe(1480);
    expect(re.push(b[1], 1)).toBeUndefined();
    expect(re.push(b[2], 1)?.equals(bPayload)).toBe(true);
    expect(re.bytes).toBe(0);
  });

  it('bounds the number of partial datagrams, evicting the oldest', () => {
    const r = rng(8);
    const re = new Reassembler({ ...opts, maxDatagrams: 3 });
    const payloads = [0, 1, 2, 3].map(() => randomBytes(r, 3000));
    const frags = payloads.map((p, id) => fragmentsOf(p, 1500, id));
    for (const f of frags) re.push(f[0], 0);
    expect(re.pending).toBe(3);
    expect(re.stats.dropped).toBe(1);
    expect(re.push(frags[0][1], 0)).toBeUndefined();
    expect(re.push(frags[0][2], 0)).toBeUndefined();
    for (const id of [2, 3]) {
      expect(re.push(frags[id][1], 0)).toBeUndefined();
      expect(re.push(frags[id][2], 0)?.equals(payloads[id])).toBe(true);
    }
  });

  it('refuses nonsensical bounds', () => {
    expect(() => new Reassembler({ timeoutMs: 0, maxDatagrams: 1, maxBytes: 1 })).toThrow(RangeError);
    expect(() => new Reassembler({ timeoutMs: 1, maxDatagrams: 0, maxBytes: 1 })).toThrow(RangeError);
  });
});
