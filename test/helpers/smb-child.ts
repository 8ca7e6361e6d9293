/**
 * The other process of test/unit/smb.test.ts: maps an SMB file the test
 * created, checks what the test stored, and answers through the same memory.
 *
 *   node --import tsx test/helpers/smb-child.ts PATH BYTES TOKEN
 *
 * It reads element 0's token and the ring text the test wrote, writes its own
 * text into the other ring, publishes the producer cursor, sets the test's CSBA
 * bit, and waits (polling, as a partition does) for the test to consume.
 */
import { mapShared } from '../../shared/shm/shm-file.ts';
import { ElementWord, SmbView } from '../../shared/smc/smb.ts';

const [file, bytes, token] = process.argv.slice(2);
const view = SmbView.open(mapShared(file, Number(bytes)));
const w = view.words;
const fail = (msg: string) => {
  process.stderr.write(`${msg}\n`);
  process.exit(1);
};
if (view.token(0) !== Number(token)) fail(`token ${view.token(0)}, expected ${token}`);
const prod0 = Atomics.load(w, view.elementWord(0, ElementWord.Prod0));
const got = view.ring(0, 0).subarray(0, prod0).toString();
if (got !== 'from the test') fail(`ring 0 holds "${got}"`);
Atomics.store(w, view.elementWord(0, ElementWord.Cons0), prod0);

const reply = Buffer.from('from the child');
reply.copy(view.ring(0, 1));
Atomics.store(w, view.elementWord(0, ElementWord.Prod1), reply.length);
view.markPending(0, 0);
process.stdout.write('published\n');

const deadline = Date.now() + 10_000;
const poll = () => {
  if (Atomics.load(w, view.elementWord(0, ElementWord.Cons1)) === reply.length) process.exit(0);
  if (Date.now() > deadline) fail('the test never consumed');
  setTimeout(poll, 1);
};
poll();
