import { PlatformError } from '../../shared/platform/platform.ts';
import { UsageError } from '../../shared/runtime/options.ts';
import { exitWhenReaderGone } from './closed-pipe.ts';
import { commandHelp, overview, parseCommand } from './command.ts';
import { COMMANDS, findCommand } from './commands/index.ts';

/**
 * The `lparlab` command: the verb picks a Command from the table
 * (commands/index.ts), whose own options table parses the rest. Exit codes:
 * 0 done, 1 failed, 2 a command line or platform file that does not fit.
 */
async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h') {
    process.stdout.write(overview(COMMANDS));
    return 0;
  }
  if (verb === 'help') {
    const c = rest[0] === undefined ? undefined : findCommand(rest[0]);
    if (rest[0] !== undefined && !c) throw new UsageError(`unknown command "${rest[0]}"\n\n${overview(COMMANDS)}`);
    process.stdout.write(c ? commandHelp(c) : overview(COMMANDS));
    return 0;
  }
  const c = findCommand(verb);
  if (!c) throw new UsageError(`unknown command "${verb}"${verb.startsWith('-') ? ' (the verb comes first: lparlab VERB [options])' : ''}\n\n${overview(COMMANDS)}`);
  const ctx = parseCommand(c, rest);
  if ((ctx.values as { help?: boolean }).help) {
    process.stdout.write(commandHelp(c));
    return 0;
  }
  return c.run(ctx);
}

exitWhenReaderGone(process.stdout);
try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`lparlab: ${(err as Error).message}\n`);
  process.exitCode = err instanceof UsageError || err instanceof PlatformError ? 2 : 1;
}
