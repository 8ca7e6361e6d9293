import { spawn } from 'node:child_process';
import { required } from '../../../shared/runtime/options.ts';
import { nodeArgs, processPlan, REPO_ROOT, serviceEnv } from '../../../services/supervisor/process-plan.ts';
import { command } from '../command.ts';

/** One process in the foreground, stdio attached; with --inspect, ready for a debugger. */
export default command({
  name: 'svc',
  usage: ['svc ROLE --id NAME [--inspect[=HOST:PORT]] [--inspect-brk[=HOST:PORT]] [--node-arg=FLAG]...'],
  summary: 'run one process of the platform in the foreground (debugger-ready)',
  description: `Runs the process as the supervisor would (same compiled file and environment, and
the command line, which it prints first, with --enable-source-maps so stack traces
and a debugger show the TypeScript). Leave it out of the platform with lparlab up
--except NAME. Any node flag passes through with --node-arg, e.g. --node-arg=--cpu-prof.`,
  options: {
    id: { type: 'string', arg: 'NAME', help: 'the process to run (its name in the platform)' },
    inspect: { type: 'string', optionalValue: true, arg: 'HOST:PORT', help: "node's --inspect (default 127.0.0.1:9229)" },
    'inspect-brk': { type: 'string', optionalValue: true, arg: 'HOST:PORT', help: "node's --inspect-brk: stop at the first line" },
    'node-arg': { type: 'string', multiple: true, arg: 'FLAG', help: 'a flag for node itself' },
  },
  async run(ctx) {
    const [role, extra] = ctx.args;
    if (extra !== undefined) throw ctx.usage(`unexpected argument "${extra}"`);
    const name = required(ctx.values, 'id');
    const runDir = ctx.liveRunDir();
    const spec = processPlan(runDir.readPlatform(), runDir).find((p) => p.name === name);
    if (!spec) throw new Error(`no process "${name}" in this platform`);
    if (role && role !== spec.role) throw new Error(`${name} is a ${spec.role}, not a ${role}`);
    // Stack traces and a debugger show the TypeScript: the build has source maps (scripts/build.mjs; issue 10 item 1).
    const extraArgs: string[] = ['--enable-source-maps', ...(ctx.values['node-arg'] ?? [])];
    for (const f of ['inspect', 'inspect-brk'] as const) {
      const v = ctx.values[f];
      if (v !== undefined) extraArgs.push(v === '' ? `--${f}` : `--${f}=${v}`);
    }
    const argv = nodeArgs(spec, extraArgs);
    const env = serviceEnv(spec.role);
    process.stderr.write(`running: ${env.GLIBC_TUNABLES === undefined ? '' : `GLIBC_TUNABLES=${env.GLIBC_TUNABLES} `}node ${argv.join(' ')}\n`);
    const child = spawn(process.execPath, argv, { stdio: 'inherit', cwd: REPO_ROOT, env });
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
    return new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  },
});
