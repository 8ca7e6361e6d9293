import { channelAsk, drained, onStream, openAdmin, writeOrPause } from '../admin-channel.ts';
import { EXIT_SIGPIPE, onReaderGone } from '../closed-pipe.ts';
import { command } from '../command.ts';

/** curl-like GET through the partition's TCP; the body streams to stdout, the status line and headers to stderr with -v. */
export default command({
  name: 'http',
  usage: ['http [-v] [--fail] [--max-time S] LPAR URL'],
  summary: "GET through a partition's TCP (as curl); the body to stdout, byte for byte",
  options: {
    verbose: { type: 'boolean', short: 'v', help: 'the status line and headers to stderr' },
    fail: { type: 'boolean', help: 'exit 22 on an HTTP error status (as curl --fail)' },
    'max-time': { type: 'number', arg: 'S', min: 0.001, help: 'give up after S seconds (default 600)' },
  },
  async run(ctx) {
    const [lpar, url, extra] = ctx.args;
    if (!lpar || !url || extra !== undefined) throw ctx.usage('http takes an LPAR and a URL');
    const maxTimeMs = (ctx.values['max-time'] ?? 600) * 1000;
    const ch = await openAdmin(ctx.liveRunDir(), lpar);
    const stdout = process.stdout;
    const out = { waiting: false };
    // A malformed body message ends the fetch: the channel closes, and the command fails with the reason.
    let malformed: string | undefined;
    // stdout's reader went away (`| head`): the fetch ends quietly.
    let readerGone = false;
    let gone!: () => void;
    const whenGone = new Promise<number>((r) => (gone = () => r(EXIT_SIGPIPE)));
    onReaderGone(stdout, () => {
      readerGone = true;
      ch.close();
      gone();
    });
    onStream(ch, 'http-body', (m) => !readerGone && writeOrPause(stdout, ch, m.data, out), (reason) => {
      malformed ??= reason;
      ch.close();
    });
    try {
      const asked = channelAsk(ch, { t: 'http-fetch', url }, maxTimeMs).catch((err: Error) => {
        if (readerGone) return undefined;
        throw malformed !== undefined ? new Error(malformed) : err;
      });
      const r = await Promise.race([asked, whenGone]);
      if (typeof r !== 'object' || r === undefined) return EXIT_SIGPIPE;
      if (ctx.values.verbose) {
        const lines = [`< HTTP/${r.httpVersion} ${r.status} ${r.statusMessage}`];
        for (const [k, v] of Object.entries(r.headers)) for (const one of Array.isArray(v) ? v : [v]) lines.push(`< ${k}: ${one}`);
        process.stderr.write(`${lines.join('\n')}\n<\n`);
      }
      const left = await Promise.race([drained(stdout).then(() => 0), whenGone]);
      if (left === EXIT_SIGPIPE) return EXIT_SIGPIPE;
      if (malformed !== undefined) throw new Error(malformed);
      // As curl --fail: an HTTP error status is exit code 22.
      return ctx.values.fail && r.status >= 400 ? 22 : 0;
    } finally {
      ch.close();
    }
  },
});
