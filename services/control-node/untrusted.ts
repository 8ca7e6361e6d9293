/**
 * What the control node does with what partitions send it: every field is
 * checked by its protocol's decoder (shared/protocol/mgmt.ts) before it is
 * used, and what goes into the log is bounded, so no partition can crash
 * the control node or flood its log.
 */
import type { Logger } from 'pino';
import { refusals } from '../../shared/runtime/refusal-log.ts';

/** Causes remembered for once-only logging; beyond this, warnings are only counted by their callers. */
const CAUSES_REMEMBERED = 10_000;

/** Logs the first occurrence of each cause; later ones only count, so no partition can flood the log. */
export class LogOnce {
  private readonly warned = new Set<string>();

  constructor(private readonly log: Logger) {}

  warn(key: string, obj: Record<string, unknown>, msg: string): void {
    if (this.warned.has(key) || this.warned.size > CAUSES_REMEMBERED) return;
    this.warned.add(key);
    refusals.warn(this.log, obj, `${msg} (further ones counted, not logged)`);
  }
}

/** What of an untrusted value goes into a log line. */
export function forLog(v: unknown): string {
  return typeof v === 'string' ? v.slice(0, 64) : typeof v;
}
