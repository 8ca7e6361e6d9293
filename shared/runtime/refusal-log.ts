import type { Logger } from 'pino';

/** Lines a refusal log writes per window; beyond it, refusals are counted and summed up in the next line. */
const LINES_PER_WINDOW = 10;
const WINDOW_MS = 1000;

/**
 * The log of refused input, rate-limited (issue 11 item 10: 20,000 malformed
 * frames wrote 20,000 log lines in a second). Whoever can reach a listener
 * decides how often it refuses something, so a line per refusal lets any
 * local user fill the disk and bury what matters. One limit per process:
 * a flood spread over many connections counts against the same window.
 * What is not logged is counted, and the next line written says how many
 * were left out; callers keep their own per-cause counters (stats) as well.
 */
export class RefusalLog {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly linesPerWindow = LINES_PER_WINDOW,
    private readonly windowMs = WINDOW_MS,
  ) {}

  /** Refusals left out of the log since the last line written. */
  get pending(): number {
    return this.suppressed;
  }

  warn(log: Logger, obj: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.linesPerWindow) {
      this.suppressed++;
      return;
    }
    this.inWindow++;
    if (this.suppressed > 0) {
      log.warn({ ...obj, suppressed: this.suppressed }, `${msg} (and ${this.suppressed} refusals before it not logged: rate limit)`);
      this.suppressed = 0;
    } else {
      log.warn(obj, msg);
    }
  }
}

/** The process's one refusal log: every listener that logs refused input writes through it. */
export const refusals = new RefusalLog();
