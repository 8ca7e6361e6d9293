import crypto from 'node:crypto';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { bulkSource, fillPattern } from '../../shared/workload/bulk.ts';

describe('shared/workload/bulk', () => {
  it('fillPattern: the same seed gives the same bytes, another seed others; any size', () => {
    expect(fillPattern(7, 4096).equals(fillPattern(7, 4096))).toBe(true);
    expect(fillPattern(7, 4096).equals(fillPattern(8, 4096))).toBe(false);
    // A shorter run is a prefix of a longer one with the same seed (the word stream does not depend on size).
    expect(fillPattern(3, 1000).subarray(0, 996).equals(fillPattern(3, 4000).subarray(0, 996))).toBe(true);
    for (const n of [0, 1, 3, 5, 65_537]) expect(fillPattern(1, n).length).toBe(n);
    // Seed 0 is not a stuck generator.
    expect(new Set(fillPattern(0, 64)).size).toBeGreaterThan(8);
  });

  it('bulkSource sends the pattern to a sink over node:net and returns what the sink answered', async () => {
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      const h = crypto.createHash('sha256');
      s.on('data', (d: Buffer) => h.update(d));
      s.on('end', () => s.end(h.digest('hex')));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const bytes = 3 * 64 * 1024 + 123;
      const r = await bulkSource((o) => net.connect(o), '127.0.0.1', port, bytes, 42);
      expect(r.bytes).toBe(bytes);
      expect(r.answer).toBe(r.sha256);
      // The stream is fresh pattern per 64 KiB chunk (seed, seed + 1, ...).
      const chunks = [0, 1, 2, 3].map((i) => fillPattern(42 + i, i < 3 ? 64 * 1024 : 123));
      expect(r.sha256).toBe(crypto.createHash('sha256').update(Buffer.concat(chunks)).digest('hex'));
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
