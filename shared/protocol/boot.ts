/**
 * How a platform's boot goes, process by process (issue 10 item 4): the
 * events the supervisor's boot (services/supervisor/boot.ts) emits and `lparlab
 * up` shows. In the foreground they are callbacks; behind `up --detach` the
 * background supervisor writes them to a pipe its launcher reads (fd 3 of
 * `lparlab supervise --progress-fd 3`), one JSON object a line, until the
 * boot is over. Not a hot path: a few events per process, once.
 *
 *   spawned {name, pid}          the process exists (it is loading its code)
 *   loaded {name}                its admin socket answers: code loaded, it is connecting
 *   up {name, health, ms}        it reported healthy (or degraded, with processes left out), ms after spawn
 *   failed {name, reason}        it exited before it was up, or stayed not up past the boot timeout
 *   booted {ms}                  every process is up
 */
import { MessageSet, TEXT_MAX, bounded, int, name, oneOf, type Decoded, type MessagesOf } from './check.ts';

export const bootEvents = new MessageSet('boot event', {
  spawned: { name: name(), pid: int(0) },
  loaded: { name: name() },
  up: { name: name(), health: oneOf(['healthy', 'degraded'] as const), ms: int(0) },
  failed: { name: name(), reason: bounded(TEXT_MAX * 4) },
  booted: { ms: int(0) },
});

type BootEvents = MessagesOf<typeof bootEvents>;
export type BootEvent = BootEvents[keyof BootEvents];

/** One event as a line of the progress pipe. */
export function emitBootLine(e: BootEvent): string {
  return `${JSON.stringify(e)}\n`;
}

/** A line of the progress pipe, checked: an event, or why it is not one. */
export function parseBootLine(line: string): Decoded<BootEvent> {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { ok: false, reason: `boot event: not JSON: ${line.slice(0, 80)}` };
  }
  return bootEvents.decode(raw);
}
