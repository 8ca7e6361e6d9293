import type { AdminStreams } from '../../../shared/protocol/admin.ts';
import { numberArg } from '../../../shared/runtime/options.ts';
import { channelAsk, drained, onStream, openAdmin, writeOrPause } from '../admin-channel.ts';
import { EXIT_SIGPIPE, onReaderGone } from '../closed-pipe.ts';
import { command } from '../command.ts';

/**
 * netcat over the partition's TCP. The LPAR holds the connection (admin verbs
 * nc-connect / nc-listen) and relays it over the admin channel as `nc-data`
 * and `nc-end` both ways; it ends with `nc-closed`. Backpressure both ways:
 * stdin is paused while the admin link is full, the link while stdout is.
 * EOF on stdin half-closes the connection; the command exits once the
 * connection is closed (the remote's data all written out), 1 if it failed.
 */
export default command({
  name: 'nc',
  usage: ['nc [-v] LPAR HOST PORT', 'nc -l [-v] LPAR [HOST] PORT'],
  summary: 'netcat inside a partition: stdin/stdout over its TCP',
  description: 'EOF on stdin half-closes the connection; nc exits once the connection is closed. -l takes one incoming connection.',
  options: {
    listen: { type: 'boolean', short: 'l', help: 'listen for one connection instead of connecting' },
    verbose: { type: 'boolean', short: 'v', help: 'say what happens, on stderr' },
  },
  async run(ctx) {
    const listen = ctx.values.listen === true;
    const pos = ctx.args;
    if (listen ? pos.length < 2 || pos.length > 3 : pos.length !== 3) throw ctx.usage(listen ? 'nc -l takes an LPAR, an optional host and a port' : 'nc takes an LPAR, a host and a port');
    const lpar = pos[0];
    const port = numberArg('PORT', pos.at(-1), { integer: true, min: listen ? 0 : 1, max: 65535 });
    const host = pos.length === 3 ? pos[1] : undefined;
    const say = (line: string) => ctx.values.verbose && process.stderr.write(`lparlab nc: ${line}\n`);

    const ch = await openAdmin(ctx.liveRunDir(), lpar);
    const stdin = process.stdin;
    const stdout = process.stdout;
    let finish!: (code: number) => void;
    const done = new Promise<number>((r) => (finish = r));

    // From the LPAR: bytes to stdout (the link stops reading while stdout is full).
    const out = { waiting: false };
    // stdout's reader went away (`| head`): the relay ends quietly, the connection with it.
    let readerGone = false;
    onReaderGone(stdout, () => {
      readerGone = true;
      finish(EXIT_SIGPIPE);
    });
    // A malformed message from the LPAR ends the relay as a failure, naming the field.
    const malformed = (reason: string) => {
      process.stderr.write(`lparlab nc: ${reason}\n`);
      finish(1);
    };
    onStream(ch, 'nc-data', (m) => !readerGone && writeOrPause(stdout, ch, m.data, out), malformed);
    onStream(ch, 'nc-end', () => say('remote end finished sending'), malformed);
    onStream(
      ch,
      'nc-closed',
      (m) => {
        if (m.error) process.stderr.write(`lparlab nc: ${m.error}\n`);
        else say('connection closed');
        finish(m.error ? 1 : 0);
      },
      malformed,
    );
    ch.onClose(() => finish(1));

    // To the LPAR: stdin (paused while the admin link is full); EOF half-closes.
    const pump = () => {
      ch.link.onDrain = () => stdin.resume();
      stdin.on('data', (d: Buffer) => {
        if (!ch.send({ t: 'nc-data', data: d })) stdin.pause();
      });
      stdin.on('end', () => {
        say('stdin closed: half-closing');
        ch.send({ t: 'nc-end' });
      });
      stdin.on('error', () => ch.send({ t: 'nc-end' }));
    };

    const stopSignal = () => finish(130);
    process.once('SIGINT', stopSignal);
    try {
      if (listen) {
        const connected = new Promise<AdminStreams['nc-connected']>((resolve) => onStream(ch, 'nc-connected', resolve, malformed));
        const r = await channelAsk(ch, { t: 'nc-listen', port, ...(host !== undefined ? { host } : {}) });
        say(`${lpar} listening on ${r.local}`);
        const c = await Promise.race([connected, done.then(() => undefined)]);
        if (c) {
          say(`connection from ${c.remote} to ${c.local}`);
          pump();
        }
      } else {
        const r = await channelAsk(ch, { t: 'nc-connect', host: pos[1], port }, 30_000);
        say(`${lpar} ${r.local} connected to ${r.remote}`);
        pump();
      }
      const code = await done;
      // Everything from the remote is on its way to stdout: wait for it before leaving.
      if (!readerGone) await Promise.race([drained(stdout), done]);
      return code;
    } finally {
      process.removeListener('SIGINT', stopSignal);
      stdin.pause();
      stdin.removeAllListeners('data');
      stdin.destroy();
      ch.close();
    }
  },
});
