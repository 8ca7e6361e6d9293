/**
 * The other process of test/unit/frame-ring.test.ts: maps the ring file the
 * test laid out and consumes COUNT frames from it, checking each one's
 * pattern (frame i is i bytes of value i & 0xff), then prints what it saw.
 *
 *   node --import tsx test/helpers/frame-ring-child.ts PATH BYTES COUNT
 */
import { mapShared } from '../../shared/shm/shm-file.ts';
import { FrameRing } from '../../shared/ring/frame-ring.ts';

const [file, bytes, count] = process.argv.slice(2);
const ring = FrameRing.open(mapShared(file, Number(bytes)));
const want = Number(count);
let got = 0;
let bad = 0;
let sum = 0;
const deadline = Date.now() + 20_000;
const poll = () => {
  ring.consume((f) => {
    const i = got++;
    if (f.length !== i % 3000 || (f.length > 0 && (f[0] !== (i & 0xff) || f[f.length - 1] !== (i & 0xff)))) bad++;
    sum += f.length;
  });
  if (got >= want || ring.corrupt || Date.now() > deadline) {
    process.stdout.write(`${JSON.stringify({ got, bad, sum, corrupt: ring.corrupt })}\n`);
    process.exit(0);
  }
  setImmediate(poll);
};
poll();
