import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PcapWriter, pcapHeader, pcapRecord } from '../../shared/wire/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'wire-pcap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('pcap', () => {
  it('writes the classic global header, little endian', () => {
    expect(pcapHeader().toString('hex')).toBe('d4c3b2a1' + '0200' + '0400' + '00000000' + '00000000' + '00000400' + '01000000');
    expect(pcapHeader(101, 65535).toString('hex')).toBe('d4c3b2a1020004000000000000000000ffff000065000000');
  });

  it('splits millisecond timestamps into seconds and microseconds', () => {
    const frame = Buffer.from('abc');
    const [h, data] = pcapRecord(1500.25, frame);
    expect(h.toString('hex')).toBe('01000000' + '1aa20700' + '03000000' + '03000000');
    expect(data).toBe(frame);
    const [carry] = pcapRecord(999.9999, frame);
    expect([carry.readUInt32LE(0), carry.readUInt32LE(4)]).toEqual([1, 0]);
    const [now] = pcapRecord(1_700_000_000_123.456, frame);
    expect([now.readUInt32LE(0), now.readUInt32LE(4)]).toEqual([1_700_000_000, 123456]);
    expect(() => pcapRecord(-1, frame)).toThrow(RangeError);
  });

  it('truncates to the snap length but records the original length', () => {
    const [h, data] = pcapRecord(0, Buffer.alloc(100, 7), 64);
    expect([h.readUInt32LE(8), h.readUInt32LE(12), data.length]).toEqual([64, 100, 64]);
  });

  it('PcapWriter writes a readable file and copies frames it is given', async () => {
    const path = join(dir, 'w.pcap');
    const w = new PcapWriter(path);
    const reused = Buffer.from('first frame');
    w.write(1000, reused);
    reused.write('XXXXX');
    w.write(2000.5, Buffer.from('second'));
    expect(w.count).toBe(2);
    await w.close();
    expect(() => w.write(0, Buffer.alloc(1))).toThrow();
    const file = readFileSync(path);
    expect(file.subarray(0, 24).equals(pcapHeader())).toBe(true);
    let o = 24;
    const frames: string[] = [];
    const times: number[] = [];
    while (o < file.length) {
      const len = file.readUInt32LE(o + 8);
      times.push(file.readUInt32LE(o) * 1000 + file.readUInt32LE(o + 4) / 1000);
      frames.push(file.subarray(o + 16, o + 16 + len).toString());
      o += 16 + len;
    }
    expect(o).toBe(file.length);
    expect(frames).toEqual(['first frame', 'second']);
    expect(times).toEqual([1000, 2000.5]);
  });

  it('PcapWriter.close rejects when the file cannot be written', async () => {
    const w = new PcapWriter(join(dir, 'no-such-dir', 'x.pcap'));
    w.write(0, Buffer.alloc(14));
    await expect(w.close()).rejects.toThrow(/ENOENT/);
  });
});
