import type { BootEvent } from '../../shared/protocol/boot.ts';

/**
 * What `lparlab up` shows while a platform boots (issue 10 item 4), from the
 * boot's events (shared/protocol/boot.ts):
 *   tty    one status line redrawn in place: how many are up, which are
 *          starting and for how long, which are slow; a failure is printed
 *          above it and stays;
 *   lines  a plain line per event (a log, a pipe, CI): starting, up, slow, failed;
 *   none   nothing (`--json`: stdout is the final JSON only).
 * A process is slow once it has been starting for `slowMs` without being up.
 * The clock only redraws; it never holds the boot back.
 */
export type ProgressMode = 'tty' | 'lines' | 'none';

export interface ProgressOut {
  write(s: string): unknown;
  columns?: number;
}

const SLOW_MS = 10_000;
const TICK_MS = 250;

interface Starting {
  since: number;
  loaded: boolean;
  slowSaid: boolean;
}

export class BootProgress {
  private readonly starting = new Map<string, Starting>();
  private up = 0;
  private failed = false;
  private readonly tick?: NodeJS.Timeout;
  private drawn = false;

  constructor(
    private readonly total: number,
    private readonly out: ProgressOut,
    readonly mode: ProgressMode,
    private readonly slowMs = SLOW_MS,
    private readonly now: () => number = Date.now,
  ) {
    if (mode !== 'none') {
      this.tick = setInterval(() => this.onTick(), mode === 'tty' ? TICK_MS : 1000);
      this.tick.unref();
    }
  }

  /** The mode for a stream: a terminal gets the live line, anything else plain lines; --json nothing. */
  static modeFor(stream: { isTTY?: boolean }, json: boolean): ProgressMode {
    if (json) return 'none';
    return stream.isTTY ? 'tty' : 'lines';
  }

  event(e: BootEvent): void {
    if (this.mode === 'none') return;
    switch (e.t) {
      case 'spawned':
        this.starting.set(e.name, { since: this.now(), loaded: false, slowSaid: false });
        this.say(`starting ${e.name} (pid ${e.pid})`);
        break;
      case 'loaded': {
        const s = this.starting.get(e.name);
        if (s) s.loaded = true;
        break;
      }
      case 'up':
        this.starting.delete(e.name);
        this.up++;
        this.say(`${e.name} ${e.health} after ${secs(e.ms)}`);
        break;
      case 'failed':
        this.failed = true;
        this.starting.delete(e.name);
        // Always shown, on a terminal too: the reason stays on screen above the status line.
        this.print(`${e.name} FAILED: ${e.reason}`);
        break;
      case 'booted':
        this.print(`all ${this.total} processes up in ${secs(e.ms)}`);
        break;
    }
    this.redraw();
  }

  /** Clears the status line and stops the clock (the boot is over, either way). */
  done(): void {
    if (this.tick) clearInterval(this.tick);
    this.clearLine();
  }

  private onTick(): void {
    const t = this.now();
    for (const [name, s] of this.starting) {
      if (s.slowSaid || t - s.since < this.slowMs) continue;
      s.slowSaid = true;
      this.say(`${name} is slow: not healthy after ${secs(t - s.since)} (${s.loaded ? 'running, connecting' : 'still loading'})`);
    }
    this.redraw();
  }

  /** A line of the plain mode (on a terminal the status line says it instead). */
  private say(line: string): void {
    if (this.mode === 'lines') this.out.write(`${line}\n`);
  }

  /** A line that stays, in either mode. */
  private print(line: string): void {
    this.clearLine();
    this.out.write(`${line}\n`);
  }

  private clearLine(): void {
    if (this.mode === 'tty' && this.drawn) {
      this.out.write('\r\x1b[K');
      this.drawn = false;
    }
  }

  private redraw(): void {
    if (this.mode !== 'tty' || this.failed) return;
    if (this.up === this.total) return this.clearLine();
    const t = this.now();
    const slow = [...this.starting].filter(([, s]) => t - s.since >= this.slowMs);
    const rest = [...this.starting].filter(([, s]) => t - s.since < this.slowMs);
    const list = (xs: Array<[string, Starting]>) => xs.map(([n, s]) => `${n} ${secs(t - s.since)}`).join(', ');
    let line = `booting: ${this.up}/${this.total} up`;
    if (rest.length) line += ` | starting ${list(rest)}`;
    if (slow.length) line += ` | SLOW ${list(slow)}`;
    // A pseudo-terminal may report 0 columns: then assume a common width.
    const width = Math.max(20, (this.out.columns || 100) - 1);
    if (line.length > width) line = `${line.slice(0, width - 1)}…`;
    this.out.write(`\r\x1b[K${line}`);
    this.drawn = true;
  }
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
