import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { pipeChannel } from '../../shared/control/pipe-channel.ts';

/** A stream whose writes complete only when the test says so (a slow stdout or socket). */
function slowStream(highWaterMark: number) {
  const done: Array<() => void> = [];
  const got: Buffer[] = [];
  const stream = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, cb) {
      got.push(chunk);
      done.push(() => cb());
    },
  });
  const flush = () => {
    while (done.length) done.shift()!();
  };
  return { stream, got, flush };
}

/** The link side: records pause/resume as the channel's link would see them. */
function channel() {
  const calls: string[] = [];
  let paused = false;
  return {
    calls,
    get paused() {
      return paused;
    },
    link: {
      pause: () => {
        calls.push('pause');
        paused = true;
      },
      resume: () => {
        calls.push('resume');
        paused = false;
      },
    },
  };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('pipeChannel', () => {
  it('writes through while the stream has room, leaving the link alone', () => {
    const { stream, got } = slowStream(1024);
    const ch = channel();
    const pipe = pipeChannel(stream, ch);
    expect(pipe.write(Buffer.from('abc'))).toBe(true);
    expect(got.map(String)).toEqual(['abc']);
    expect(ch.calls).toEqual([]);
    expect(pipe.waiting).toBe(false);
  });

  it('pauses the link once when the stream fills, and resumes it on drain', async () => {
    const { stream, got, flush } = slowStream(8);
    const ch = channel();
    const pipe = pipeChannel(stream, ch);
    expect(pipe.write(Buffer.alloc(10, 1))).toBe(false);
    expect(ch.paused).toBe(true);
    expect(pipe.waiting).toBe(true);
    // More messages already in flight still reach the stream, without pausing twice.
    expect(pipe.write(Buffer.alloc(3, 2))).toBe(false);
    expect(ch.calls).toEqual(['pause']);
    flush();
    await tick();
    flush();
    await tick();
    expect(ch.calls).toEqual(['pause', 'resume']);
    expect(pipe.waiting).toBe(false);
    expect(Buffer.concat(got)).toEqual(Buffer.concat([Buffer.alloc(10, 1), Buffer.alloc(3, 2)]));
    // Full again: paused again.
    expect(pipe.write(Buffer.alloc(9))).toBe(false);
    expect(ch.calls).toEqual(['pause', 'resume', 'pause']);
    expect(stream.listenerCount('drain')).toBe(1);
  });

  it('a stream that closes while full resumes the link (nothing will drain) and drops what comes after', async () => {
    const { stream } = slowStream(4);
    const ch = channel();
    const pipe = pipeChannel(stream, ch);
    expect(pipe.write(Buffer.alloc(5))).toBe(false);
    expect(ch.paused).toBe(true);
    stream.destroy();
    await tick();
    expect(ch.calls).toEqual(['pause', 'resume']);
    expect(pipe.write(Buffer.alloc(1))).toBe(false);
    expect(ch.calls).toEqual(['pause', 'resume']);
    expect(stream.listenerCount('drain')).toBe(0);
  });

  it('after end() a write is refused, not an error', () => {
    const { stream, flush } = slowStream(64);
    const ch = channel();
    const pipe = pipeChannel(stream, ch);
    stream.end();
    flush();
    expect(pipe.write(Buffer.from('late'))).toBe(false);
    expect(ch.calls).toEqual([]);
  });
});
