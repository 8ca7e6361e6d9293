import type { Logger } from 'pino';
import { AuthError, authenticateTo } from '../../shared/control/auth.ts';
import { ControlChannel, RemoteError } from '../../shared/control/channel.ts';
import type { ControlMessage } from '../../shared/control/codec.ts';
import { connectLink } from '../../shared/link/transport.ts';
import { HvError, HvErrorCode, HvMsg, decodeHvSignal, decodeHvSmbGone, decodeHvStatus, decodeHvWelcome, decodeSmbeGrant, hvErrorFrom, type HvRequest, type HvStatus, type HvWelcome, type SmbeGrant } from '../../shared/protocol/hv.ts';

export type { SmbeGrant } from '../../shared/protocol/hv.ts';

export interface HypervisorClientOptions {
  name: string;
  credential: Buffer;
  /** The CEC's hypervisor (the partition's --hv flag). */
  url: string;
  log: Logger;
  /** How long a request waits for its reply. */
  timeoutMs?: number;
}

/**
 * A partition's session with its CEC's hypervisor (shared/protocol/hv.ts):
 * elements of shared memory buffers for SMC-D connections (seed 002, Fig. 4
 * step 425) and the doorbell between the two partitions of an element (Fig. 6
 * step 608).
 *
 * The session is kept up: lost, it is made again with backoff. While it was
 * down the hypervisor counted this partition as gone and aborted and released
 * every element it held, so `onSessionLost` tells the owner to reset the
 * connections over them. A refusal (a partition of another CEC, a bad
 * credential) is final: retrying cannot change it.
 */
export class HypervisorClient {
  onSignal: (token: number) => void = () => {};
  /** The session ended: every element this partition held is aborted towards its peer and released. */
  onSessionLost: () => void = () => {};
  /** The hypervisor removed an SMB: its mapping may go once no element of it is in use here. */
  onSmbGone: (smbId: number) => void = () => {};
  /** Malformed messages from the hypervisor: counted and dropped (a malformed reply fails its request EPROTO). */
  malformed = 0;
  /** The CEC and SMB geometry of the open session. */
  welcome?: HvWelcome;
  private ch?: ControlChannel;
  private stopped = false;
  /** Tokens granted in the open session and not released: a grant outlives its session in no one's books. */
  private readonly granted = new Set<number>();
  private readonly log: Logger;

  constructor(private readonly opts: HypervisorClientOptions) {
    this.log = opts.log.child({ component: 'hv-client' });
  }

  get connected(): boolean {
    return this.ch !== undefined && !this.ch.link.closed;
  }

  /** Resolves once the hypervisor welcomed this partition; rejects if it refused it, or on stop(). */
  async start(): Promise<void> {
    for (let backoff = 50; ; backoff = Math.min(1000, backoff * 2)) {
      try {
        await this.connect();
        return;
      } catch (err) {
        if (this.stopped || err instanceof AuthError) throw this.refusal(err as Error);
        this.log.debug({ url: this.opts.url, err: (err as Error).message }, 'hypervisor not reachable, retrying');
        await new Promise((r) => setTimeout(r, backoff));
      }
    }
  }

  /** An element of the SMB shared with `peer`, for a new connection; this partition is its allocator. */
  alloc(peer: string): Promise<SmbeGrant> {
    return this.request({ t: HvMsg.Alloc, peer });
  }

  /** This partition's side of the element `token`, which its peer allocated and named to it. */
  attach(token: number): Promise<SmbeGrant> {
    return this.request({ t: HvMsg.Attach, token });
  }

  /** The hypervisor's view of this partition's own SMBs and elements (hv-status). */
  async status(): Promise<HvStatus> {
    const ch = this.ch;
    if (!ch || ch.link.closed) throw new HvError(HvErrorCode.NotConnected, `${this.opts.name} has no session with the hypervisor at ${this.opts.url}`);
    const d = decodeHvStatus(await ch.request({ t: HvMsg.Status }, this.opts.timeoutMs ?? 5000));
    if (!d.ok) throw new HvError(HvErrorCode.Protocol, d.reason);
    return d.value;
  }

  holds(token: number): boolean {
    return this.granted.has(token >>> 0);
  }

  /** Lets go of an element; fire-and-forget (a partition without a session holds no elements anyway). */
  release(token: number): void {
    this.granted.delete(token >>> 0);
    if (this.connected) this.ch!.send({ t: HvMsg.Release, token });
  }

  /** Says this partition maps SMB `smbId` and keeps it mapped until onSmbGone (fire-and-forget). */
  mapped(smbId: number): void {
    if (this.connected) this.ch!.send({ t: HvMsg.Mapped, smbId });
  }

  /** Rings the doorbell of the element's other partition. */
  signal(token: number): void {
    if (this.connected) this.ch!.send({ t: HvMsg.Signal, token });
  }

  stop(): void {
    this.stopped = true;
    this.ch?.close();
  }

  private async connect(): Promise<void> {
    const link = await connectLink(this.opts.url);
    const ch = new ControlChannel(link, this.log);
    ch.handle(HvMsg.Signal, (m) => {
      const d = decodeHvSignal(m);
      if (d.ok) this.onSignal(d.value.token);
      else this.malformed++;
    });
    ch.handle(HvMsg.Gone, (m) => {
      const d = decodeHvSmbGone(m);
      if (d.ok) this.onSmbGone(d.value.smbId);
      else this.malformed++;
    });
    let welcome: HvWelcome;
    try {
      const d = decodeHvWelcome(await authenticateTo(ch, this.opts.name, this.opts.credential));
      if (!d.ok) throw new HvError(HvErrorCode.Protocol, d.reason);
      welcome = d.value;
    } catch (err) {
      ch.close();
      throw err;
    }
    if (this.stopped) {
      ch.close();
      throw new Error('stopped');
    }
    this.ch = ch;
    this.welcome = welcome;
    this.log.info({ url: this.opts.url, ...welcome }, 'hypervisor session open');
    ch.onClose(() => {
      if (this.ch !== ch) return;
      this.ch = undefined;
      this.granted.clear();
      if (this.stopped) return;
      this.log.warn({ url: this.opts.url }, 'hypervisor session lost; its elements are released');
      this.onSessionLost();
      void this.reconnect();
    });
  }

  private async reconnect(): Promise<void> {
    for (let backoff = 100; !this.stopped; backoff = Math.min(1000, backoff * 2)) {
      await new Promise((r) => setTimeout(r, backoff));
      if (this.stopped) return;
      try {
        await this.connect();
        return;
      } catch (err) {
        if (err instanceof AuthError) {
          this.log.error({ url: this.opts.url, err: err.message }, 'hypervisor refused this partition; SMC-D stays off');
          return;
        }
      }
    }
  }

  private refusal(err: Error): Error {
    if (err instanceof AuthError) return new HvError(HvErrorCode.Access, `hypervisor at ${this.opts.url} refused ${this.opts.name}: ${err.message}`);
    return new HvError(HvErrorCode.NotConnected, `hypervisor client of ${this.opts.name} stopped`);
  }

  private async request(msg: HvRequest): Promise<SmbeGrant> {
    const ch = this.ch;
    if (!ch || ch.link.closed) throw new HvError(HvErrorCode.NotConnected, `${this.opts.name} has no session with the hypervisor at ${this.opts.url}`);
    let r: ControlMessage;
    try {
      r = await ch.request(msg, this.opts.timeoutMs ?? 5000);
    } catch (err) {
      if (err instanceof RemoteError) throw hvErrorFrom(err);
      if (ch.link.closed) throw new HvError(HvErrorCode.NotConnected, `${msg.t}: the hypervisor session ended`);
      throw new HvError(HvErrorCode.TimedOut, (err as Error).message);
    }
    const grant = decodeSmbeGrant(r);
    if (!grant.ok) {
      this.malformed++;
      throw new HvError(HvErrorCode.Protocol, grant.reason);
    }
    // Granted by a session that has ended while the reply was on its way: the hypervisor that made it is gone.
    if (this.ch !== ch) throw new HvError(HvErrorCode.NotConnected, `${msg.t}: the hypervisor session ended`);
    this.granted.add(grant.value.token >>> 0);
    return grant.value;
  }
}
