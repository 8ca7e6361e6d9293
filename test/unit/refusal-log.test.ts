import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { RefusalLog } from '../../shared/runtime/refusal-log.ts';
import { sleep } from '../helpers/wait.ts';

function capture(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({}, stream), lines };
}

/** Issue 11 item 10: refused input is logged at a bounded rate, the rest counted. */
describe('RefusalLog', () => {
  it('writes at most its lines per window and sums up what it left out in the next line', async () => {
    const { log, lines } = capture();
    const r = new RefusalLog(3, 2000);
    for (let i = 0; i < 20_000; i++) r.warn(log, { i }, 'refused');
    expect(lines).toHaveLength(3);
    expect(r.pending).toBe(19_997);
    await sleep(2100);
    r.warn(log, { i: 'next' }, 'refused');
    expect(lines).toHaveLength(4);
    expect(lines[3].suppressed).toBe(19_997);
    expect(String(lines[3].msg)).toMatch(/19997 refusals before it not logged/);
    expect(r.pending).toBe(0);
  });
});
