import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { VI_HEADER, ViFrame } from '../../shared/link/frame.ts';
import type { Link, LinkServer } from '../../shared/link/link.ts';
import { connectUnix, listenUnix } from '../../shared/link/unix-link.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The connecting side of a UNIX link sizes its reads to the frames (issue 10
 * item 6, the receiver's half): a stream of frames larger than Node's 64 KiB
 * read arrives a frame per read, each frame a buffer of its own, none copied
 * together from two reads, also when the kernel fills a read only in part.
 */
describe('UnixLink reads', () => {
  let dir: string;
  let server: LinkServer;
  let links: Link[] = [];

  afterEach(async () => {
    vi.restoreAllMocks();
    for (const l of links) l.close();
    links = [];
    await server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('hands on 64 KiB messages (65,580-byte frames) each as its own read, byte-exact', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-ul-'));
    const sock = path.join(dir, 'l.sock');
    const count = 400;
    const size = 64 * 1024 + 32;
    server = await listenUnix(sock, (link) => {
      links.push(link);
      for (let i = 0; i < count; i++) {
        const f = Buffer.allocUnsafe(VI_HEADER + size);
        ViFrame.emitHeader(f, i, size);
        f.fill(i & 0xff, VI_HEADER);
        link.send(f);
      }
    });
    // Frames copied together from reads (the decoder joins a frame split across reads with Buffer.concat).
    let joined = 0;
    const concat = Buffer.concat.bind(Buffer);
    vi.spyOn(Buffer, 'concat').mockImplementation((list, total) => {
      const b = concat(list, total);
      if (b.length >= size) joined++;
      return b;
    });
    const client = await connectUnix(sock);
    links.push(client);
    const got: Buffer[] = [];
    client.onFrame = (f) => got.push(f);
    await waitFor('every frame', () => got.length === count, 30_000);
    for (let i = 0; i < count; i++) {
      const f = got[i];
      expect(ViFrame.viOf(f)).toBe(i);
      expect(f.length).toBe(VI_HEADER + size);
      expect(f[VI_HEADER]).toBe(i & 0xff);
      expect(f[f.length - 1]).toBe(i & 0xff);
    }
    // Reads the kernel fills only in part (the writer behind) continue in place; only the first read, before any length is known, cuts one.
    expect(joined).toBeLessThan(count * 0.05);
  });
});
