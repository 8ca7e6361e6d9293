import type { Logger } from 'pino';
import { ControlChannel } from '../control/channel.ts';
import { authenticateTo } from '../control/auth.ts';
import type { Link } from '../link/link.ts';
import { connectLink } from '../link/transport.ts';
import type { LegPort } from '../rclan/rvi.ts';

export interface NicEvents {
  frame(leg: number, frame: Buffer): void;
  attached(leg: number): void;
  detached(leg: number): void;
  drained(): void;
}

/**
 * A node's port on one switch plane (seed 004, "Giganet Driver": the NIC
 * driver logic, one per fabric, below RCLAN). It attaches to the plane,
 * proving the node's identity so the switch gives it its own port, and
 * reattaches with backoff when the plane goes away and comes back.
 */
export class FabricNic implements LegPort {
  attached = false;
  port = 0;
  private link?: Link;
  private stopped = false;
  private backoff = 50;

  constructor(
    readonly plane: string,
    readonly leg: number,
    private readonly url: string,
    private readonly name: string,
    private readonly credential: Buffer,
    private readonly events: NicEvents,
    private readonly log: Logger,
  ) {}

  get writable(): boolean {
    return this.attached && this.link!.writable;
  }

  send(frame: Buffer): boolean {
    return this.attached ? this.link!.send(frame) : false;
  }

  sendParts(head: Buffer, body: Buffer): boolean {
    return this.attached ? this.link!.sendParts(head, body) : false;
  }

  start(): void {
    void this.attach();
  }

  private async attach(): Promise<void> {
    while (!this.stopped) {
      try {
        const link = await connectLink(this.url);
        const ch = new ControlChannel(link, this.log);
        const welcome = await authenticateTo(ch, this.name, this.credential);
        if (this.stopped) {
          link.close();
          return;
        }
        this.link = link;
        this.port = Number(welcome.port);
        ch.onViFrame = (frame) => this.events.frame(this.leg, frame);
        link.onDrain = () => this.events.drained();
        ch.onClose(() => this.lost());
        this.attached = true;
        this.backoff = 50;
        this.log.info({ plane: this.plane, port: this.port }, 'attached to plane');
        this.events.attached(this.leg);
        return;
      } catch (err) {
        this.log.debug({ plane: this.plane, err: (err as Error).message }, 'plane not reachable, retrying');
        await new Promise((r) => setTimeout(r, this.backoff));
        this.backoff = Math.min(1000, this.backoff * 2);
      }
    }
  }

  private lost(): void {
    if (!this.attached) return;
    this.attached = false;
    this.log.warn({ plane: this.plane }, 'lost plane');
    this.events.detached(this.leg);
    if (!this.stopped) void this.attach();
  }

  stop(): void {
    this.stopped = true;
    this.link?.close();
  }
}
