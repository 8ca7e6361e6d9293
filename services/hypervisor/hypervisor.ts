import type { Logger } from 'pino';
import { ControlChannel } from '../../shared/control/channel.ts';
import { refusals } from '../../shared/runtime/refusal-log.ts';
import { authenticatePeer, type Role } from '../../shared/control/auth.ts';
import type { ControlMessage } from '../../shared/control/codec.ts';
import type { Link } from '../../shared/link/link.ts';
import type { Platform } from '../../shared/platform/platform.ts';
import { HvError, HvErrorCode, HvMsg, decodeHvSignal, hvRequests, type HvRequest, type HvRequestOf, type HvStatus, type SmbeGrant } from '../../shared/protocol/hv.ts';
import { int } from '../../shared/protocol/check.ts';
import { readStateFile, writeStateFile } from '../../shared/runtime/state-file.ts';
import type { SmbGeometry } from '../../shared/smc/smb.ts';
import { PoolRefusal, SmbPool } from './smb-pool.ts';

/** SMB geometry from the platform file's `smc` section (parsePlatform has filled in its defaults). */
export function smbGeometry(platform: Platform): SmbGeometry {
  return { elements: platform.smc.elementsPerSmb, ringBytes: platform.smc.ringBytes };
}

/** Distinct refusal causes remembered for once-only logging; beyond this, refusals are only counted. */
const REFUSALS_REMEMBERED = 4096;

export interface HypervisorOptions {
  platform: Platform;
  cec: string;
  /** The platform key: the hypervisor checks partitions' proofs with it. */
  key: Buffer;
  /** Pool directory, already claimed (shared/shm/pool-dir.ts). */
  dir: string;
  /** Where the last SMB id is kept, so a restarted hypervisor never reuses one. */
  seqFile: string;
  log: Logger;
}

/**
 * The hypervisor of one CEC, for its shared memory pool (seed 002, Fig. 3: it
 * sets up the shared memory buffers the partitions of the CEC communicate
 * through; "the identity of the LPARs authorized to access the shared memory
 * buffer" is kept here and nowhere else).
 *
 * Partitions of this CEC hold one authenticated session each. Over it they
 * get elements for their connections, attach to elements a peer allocated
 * for them, release them, and ring each other's doorbell (Fig. 6 step 608).
 * A partition never learns the path of an SMB it is not a partition of, and
 * a token is worth nothing to anyone but the two partitions it names.
 *
 * When a session ends — the partition died, was stopped, or lost its link —
 * every element it held is aborted towards its peer and freed once the peer
 * lets go, so a killed partition leaves no buffer behind.
 */
export class Hypervisor {
  readonly stats = { sessions: 0, allocated: 0, attached: 0, released: 0, refused: 0, signals: 0, reclaimed: 0, authFailures: 0 };
  readonly pool: SmbPool;
  private readonly lpars = new Map<string, string>();
  private readonly sessions = new Map<string, ControlChannel>();
  private readonly refusalsLogged = new Set<string>();
  private lastSmbId: number;
  private closed = false;

  constructor(private readonly opts: HypervisorOptions) {
    for (const l of opts.platform.lpars) this.lpars.set(l.name, l.cec);
    this.lastSmbId = readSeq(opts.seqFile);
    this.pool = new SmbPool(opts.dir, smbGeometry(opts.platform), () => this.nextSmbId(), opts.log);
    // Each partition keeps an SMB mapped until told it is gone (its file may have no name to map it by again).
    this.pool.onRemoved = (smb) => {
      for (const lpar of smb.pair) this.sessions.get(lpar)?.send({ t: HvMsg.Gone, smbId: smb.id });
    };
  }

  get cec(): string {
    return this.opts.cec;
  }

  private get log(): Logger {
    return this.opts.log;
  }

  private nextSmbId(): number {
    this.lastSmbId = (this.lastSmbId % 0x7fffffff) + 1;
    writeStateFile(this.opts.seqFile, this.lastSmbId);
    return this.lastSmbId;
  }

  /** A new link: authenticate, admit only partitions of this CEC, then serve the session. */
  async accept(link: Link): Promise<void> {
    const ch = new ControlChannel(link, this.log);
    let name: string;
    try {
      ({ name } = await authenticatePeer(ch, this.opts.key, (n) => (this.lpars.has(n) ? ('lpar' as Role) : undefined)));
    } catch (err) {
      this.stats.authFailures++;
      this.refuseSession(ch, `auth:${(err as Error).message}`, (err as Error).message, { remote: link.remote });
      return;
    }
    const cec = this.lpars.get(name)!;
    if (cec !== this.opts.cec) {
      // Seed 002, Fig. 4 step 421: shared memory is only for partitions of the same CEC.
      this.refuseSession(ch, `cec:${name}`, `${name} is a partition of ${cec}, not of ${this.opts.cec}`, { lpar: name });
      return;
    }
    if (this.closed) {
      ch.send({ t: 'refused', reason: `hypervisor of ${this.opts.cec} is shutting down` });
      setTimeout(() => link.close(), 50);
      return;
    }
    this.serve(name, ch);
  }

  private refuseSession(ch: ControlChannel, cause: string, reason: string, fields: Record<string, unknown>): void {
    this.stats.refused++;
    this.logRefusal(cause, { ...fields, reason }, 'session refused');
    ch.send({ t: 'refused', reason });
    setTimeout(() => ch.close(), 50);
  }

  private serve(name: string, ch: ControlChannel): void {
    // One session per partition: a newer one replaces the old, and what the old one held ends with it
    // now, before the new session can take elements the old one's close would otherwise abort too.
    const old = this.sessions.get(name);
    if (old) {
      this.sessions.delete(name);
      this.endSession(name, 'replaced by a new session');
      old.close();
    }
    this.sessions.set(name, ch);
    this.stats.sessions++;
    ch.onClose(() => this.sessionEnded(name, ch));
    ch.handle(HvMsg.Alloc, (m) => this.alloc(name, this.decoded(name, HvMsg.Alloc, m)));
    ch.handle(HvMsg.Attach, (m) => this.attach(name, this.decoded(name, HvMsg.Attach, m)));
    ch.handle(HvMsg.Release, (m) => {
      try {
        this.release(name, this.decoded(name, HvMsg.Release, m));
      } catch (err) {
        // A notification (the client's is fire-and-forget) hears of no refusal; only a request does.
        if (m.rq !== undefined) throw err;
      }
      return {};
    });
    ch.handle(HvMsg.Mapped, (m) => {
      try {
        this.mapped(name, this.decoded(name, HvMsg.Mapped, m));
      } catch (err) {
        // A notification, as release: refusals are counted and logged, answered only to a request.
        if (m.rq !== undefined) throw err;
      }
      return {};
    });
    ch.handle(HvMsg.Signal, (m) => this.signal(name, m));
    ch.handle(HvMsg.Status, () => this.status(name));
    const g = this.pool.geometry;
    ch.send({ t: 'welcome', cec: this.opts.cec, ringBytes: g.ringBytes, elements: g.elements });
    this.log.info({ lpar: name }, 'partition session opened');
  }

  /** The checked request, or the refusal (EINVAL, naming the field) to throw back; counted and logged once per cause. */
  private decoded<T extends HvRequest['t']>(lpar: string, t: T, m: ControlMessage): HvRequestOf<T> {
    const d = hvRequests.decodeOf(t, m);
    if (!d.ok) throw this.refused(lpar, t, new PoolRefusal(HvErrorCode.Invalid, 'malformed', d.reason));
    return d.value;
  }

  private alloc(lpar: string, m: HvRequestOf<'smbe-alloc'>): SmbeGrant {
    const peer = m.peer;
    try {
      if (peer === lpar) throw new PoolRefusal(HvErrorCode.Invalid, 'self', `${lpar} cannot share an element with itself`);
      const cec = this.lpars.get(peer);
      if (cec === undefined) throw new PoolRefusal(HvErrorCode.NoSuchPeer, 'unknown-peer', `"${peer}" is not a partition of this platform`);
      // Seed 002, Fig. 4 step 421: a peer on another CEC is reached with SMC-R, not with shared memory.
      if (cec !== this.opts.cec) throw new PoolRefusal(HvErrorCode.OtherCec, 'other-cec', `${peer} is a partition of ${cec}, not of ${this.opts.cec}`);
      // Step 419: the peer is SMC-local capable only while it has a session to attach with.
      if (!this.sessions.has(peer)) throw new PoolRefusal(HvErrorCode.NotConnected, 'peer-offline', `${peer} has no session with the hypervisor of ${this.opts.cec}`);
      const e = this.pool.alloc(lpar, peer);
      this.stats.allocated++;
      return this.pool.grant(e, lpar);
    } catch (err) {
      throw this.refused(lpar, HvMsg.Alloc, err);
    }
  }

  private attach(lpar: string, m: HvRequestOf<'smbe-attach'>): SmbeGrant {
    try {
      const token = m.token;
      const again = this.pool.element(token)?.attached === true;
      const e = this.pool.attach(lpar, token);
      if (!again) this.stats.attached++;
      return this.pool.grant(e, lpar);
    } catch (err) {
      throw this.refused(lpar, HvMsg.Attach, err);
    }
  }

  private release(lpar: string, m: HvRequestOf<'smbe-release'>): void {
    try {
      const r = this.pool.release(lpar, m.token);
      if (r !== 'already') this.stats.released++;
    } catch (err) {
      throw this.refused(lpar, HvMsg.Release, err);
    }
  }

  private mapped(lpar: string, m: HvRequestOf<'smb-mapped'>): void {
    try {
      this.pool.mapped(lpar, m.smbId);
    } catch (err) {
      throw this.refused(lpar, HvMsg.Mapped, err);
    }
  }

  /**
   * The doorbell (seed 002, Fig. 6 step 608: the SIGB interrupt to the peer).
   * A notification: a bad one is counted and logged once, never answered, so
   * a partition cannot flood the log or the channel with refusals.
   */
  private signal(lpar: string, m: ControlMessage): void {
    const d = decodeHvSignal(m);
    if (!d.ok) {
      this.stats.refused++;
      this.logRefusal(`${lpar}:signal:malformed`, { lpar, reason: d.reason }, 'signal refused');
      return;
    }
    const token = d.value.token;
    const e = token === 0 ? undefined : this.pool.element(token);
    const side = e ? this.pool.sideIn(e, lpar) : undefined;
    if (!e || side === undefined || e.released[side]) {
      this.stats.refused++;
      this.logRefusal(`${lpar}:signal:${e ? 'not-party' : 'unknown-token'}`, { lpar, token }, 'signal refused');
      return;
    }
    // Forwarded even when the peer released this element: the sender spent the peer's asleep word of the
    // whole SMB to ring (Fig. 6 step 608), so the peer's other connections there would otherwise wait unsignalled.
    // A partition answers a signal for a token it no longer holds by rescanning (SmcdDevice.signalled).
    const target = this.sessions.get(this.pool.peerIn(e, lpar));
    if (!target) return;
    target.send({ t: HvMsg.Signal, token });
    this.stats.signals++;
  }

  /** Counts and logs (once per cause) a refused request, and gives the error to throw back. */
  private refused(lpar: string, verb: string, err: unknown): Error {
    if (!(err instanceof HvError)) return err as Error;
    this.stats.refused++;
    const cause = err instanceof PoolRefusal ? err.cause : err.code;
    this.logRefusal(`${lpar}:${verb}:${cause}`, { lpar, verb, code: err.code, reason: err.message }, 'request refused');
    return err;
  }

  private logRefusal(key: string, fields: Record<string, unknown>, msg: string): void {
    if (this.refusalsLogged.has(key)) return;
    if (this.refusalsLogged.size < REFUSALS_REMEMBERED) this.refusalsLogged.add(key);
    refusals.warn(this.log, fields, `${msg} (further refusals of this kind are only counted)`);
  }

  private sessionEnded(lpar: string, ch: ControlChannel): void {
    // A replaced session was ended when its successor came.
    if (this.sessions.get(lpar) !== ch) return;
    this.sessions.delete(lpar);
    if (!this.closed) this.endSession(lpar, 'closed');
  }

  private endSession(lpar: string, why: string): void {
    const abandoned = this.pool.abandon(lpar);
    for (const a of abandoned) {
      this.stats.reclaimed++;
      if (!a.notify) continue;
      // The survivor is told now rather than at its next poll: its connection must reset (ECONNRESET).
      this.sessions.get(a.notify)?.send({ t: HvMsg.Signal, token: a.element.token });
    }
    this.log.info({ lpar, why, elements: abandoned.length, aborted: abandoned.filter((a) => a.notify).length }, 'partition session ended');
  }

  /** Everything (admin), or with `lpar` only what that partition is party to (its own session's hv-status). */
  status(lpar?: string): HvStatus {
    const all = lpar === undefined ? { dir: this.opts.dir, sessions: [...this.sessions.keys()] } : {};
    return { cec: this.opts.cec, ...all, geometry: this.pool.geometry, smbBytes: this.pool.bytes, ...this.pool.status(lpar), stats: this.stats };
  }

  /** Ends every session and forgets the pool; the caller removes the directory. */
  close(): void {
    this.closed = true;
    for (const ch of this.sessions.values()) ch.close();
    this.sessions.clear();
    this.pool.clear();
  }
}

/** The last SMB id handed out; none yet is 0. A corrupt file stops the hypervisor naming it (issue 11 item 8): starting again at 0 would reuse ids. */
function readSeq(file: string): number {
  return readStateFile(file, int(0, 0x7fffffff)) ?? 0;
}
