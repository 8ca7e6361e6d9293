import { refusals } from '../../../../shared/runtime/refusal-log.ts';
import crypto from 'node:crypto';
import type { TcpOptions } from '../../../../shared/wire/tcp.ts';
import { WireError } from '../../../../shared/wire/wire-error.ts';
import { ClcReader, ClcType, DeclineReason, SmcPath, declineText, emitClc, hasSmcOption, smcSynOption, type ClcAccept, type ClcConfirm, type ClcMessage, type ClcProposal } from '../../../../shared/wire/smc-clc.ts';
import type { Logger } from 'pino';
import type { SmbeGrant } from '../../../../shared/protocol/hv.ts';
import type { SmcdDevice, SmcdPath } from './smc-d.ts';
import { SmcrPath, type LinkGroup, type SmcrFallback } from './smc-r.ts';
import type { SmcMode, SmcSocketSide, SmcStats } from './smc-path.ts';
import type { Location } from '../../../../shared/protocol/fm.ts';

/**
 * A connection's SMC states (seed 002, Fig. 4, and Fig. 10 for the way back
 * to TCP), one transition per event, as RFC 9293 does TCP's.
 *
 *   Locating      client: asking where the peer lives (seed 003), SYN not sent yet
 *   Handshake     TCP three-way handshake, the SMC option on the SYN (and the SYN-ACK's echo)
 *   WaitAccept    client: proposal sent
 *   WaitProposal  server: option echoed, the client's first CLC message not in yet
 *   WaitConfirm   server: accept sent
 *   Active        the SMC-D or SMC-R data path carries the stream
 *   Syncing       SMC-R lost every link: fallback sync sent, waiting for the peer's
 *   Draining      plain TCP after a CLC timeout (we declined): the one CLC message the
 *                 peer still owes (its proposal, accept or decline) is read and dropped
 *   Tcp           plain TCP: never SMC, declined, or after the fallback
 *   Closed        the socket is gone
 */
export const SmcState = {
  Locating: 'locating',
  Handshake: 'handshake',
  WaitAccept: 'wait-accept',
  WaitProposal: 'wait-proposal',
  WaitConfirm: 'wait-confirm',
  Active: 'active',
  Syncing: 'syncing',
  Draining: 'draining',
  Tcp: 'tcp',
  Closed: 'closed',
} as const;
export type SmcState = (typeof SmcState)[keyof typeof SmcState];

/** What the session needs of its socket (services/lpar/net/tcp/net-api.ts Socket). */
export interface SmcSocketHooks {
  /** Bytes onto the TCP connection (CLC messages, the fallback's resend). */
  tcpSend(data: Buffer): void;
  /** FIN on the TCP connection. */
  tcpClose(): void;
  /** The connection is ready for the app: 'connect', or the server's 'connection'. */
  ready(): void;
  /** App data, in order. */
  push(data: Buffer): boolean;
  pushEof(): void;
  /** The socket fails with this error code. */
  fail(code: string, why: string): void;
  /** SMC closed cleanly: close the TCP connection and end the socket. */
  finished(): void;
  /** Writes that arrived while the stream was between transports go out now (through whatever `path` is). */
  flushHeldWrites(): void;
  /** The TCP connection's progress: bytes of ours not yet acknowledged, and segments received so far. */
  tcpProgress(): { unacked: number; segmentsIn: number };
}

/** Why a connection left SMC for TCP mid-stream, by the path it left (the reason `ss` and the counters show). */
const FALLBACK_REASON: Record<SmcMode, string> = { 'SMC-R': 'SMC-R lost every link', 'SMC-D': 'SMC-D lost its hypervisor session' };

/** A fallback from a path that never carried a byte (seed 002, Fig. 10 step 1018, from the start). */
const NOTHING_SENT: SmcrFallback = { received: 0, undelivered: [], resendFrom: (from) => (from === 0 ? [] : undefined), doneWriting: false, peerDoneWriting: false };

/** Where the peer lives (seed 003): the one Location type of the fabric manager's protocol. */
export type SmcLocation = Location;

/**
 * What a session needs of the partition's SMC component (net/smc/smc.ts Smc
 * is the one): who and where this partition is, its SMC switches, the SMC-D
 * device and SMC-R link groups, the location service, and the counters. A
 * narrow port, so the session does not import the component that makes it.
 */
export interface SmcContext {
  readonly lpar: string;
  readonly cec: string;
  readonly config: {
    readonly enabled: boolean;
    /** Why SMC is off, recorded with each connection it leaves on TCP. */
    readonly offReason?: string | null;
    readonly d: boolean;
    readonly r: boolean;
    readonly ringBytes: number;
    readonly clcTimeoutMs: number;
  };
  readonly stats: SmcStats;
  readonly log: Logger;
  /** The SMC-D device, with the CEC's hypervisor behind it; absent without one. */
  readonly smcd?: SmcdDevice;
  /** The sessions alive, for `ss` and shutdown. */
  readonly sessions: Set<SmcSession>;
  /** Seed 003: where an address lives. */
  locate(ip: string): Promise<SmcLocation>;
  /** The link group to `peer` (seed 002, Fig. 4 step 409), or undefined if none can be had. */
  linkGroup(peer: string): Promise<LinkGroup | undefined>;
  countFallback(reason: string): void;
}

/**
 * One socket's SMC: the offer on the SYN, the CLC exchange over the new TCP
 * connection, the data path once active, and the way back to TCP. The app
 * sees none of it (seed 003: the socket API is unchanged).
 */
export class SmcSession implements SmcSocketSide {
  state: SmcState;
  mode: SmcMode | 'TCP' = 'TCP';
  /** Why this connection runs TCP, when SMC was possible in principle. */
  reason?: string;
  path?: SmcdPath | SmcrPath;
  private location?: SmcLocation;
  private offered = false;
  private peerOffered = false;
  private readonly reader = new ClcReader();
  private timer?: NodeJS.Timeout;
  private grant?: SmbeGrant;
  private group?: Promise<LinkGroup | undefined>;
  private eofPushed = false;
  private fallbackState?: SmcrFallback;
  private fallbackReason = FALLBACK_REASON['SMC-R'];
  /** The peer's TCP FIN came: its SMC side is finished (it closes TCP only then). */
  private tcpFinSeen = false;
  /** What the peer said it sent in all when its SMC-R connection closed cleanly (ClcType.Closed), if it did. */
  private peerSentTotal: number | undefined;

  constructor(
    private readonly smc: SmcContext,
    private readonly hooks: SmcSocketHooks,
    readonly role: 'client' | 'server',
    private readonly remoteIp: string,
  ) {
    this.state = role === 'client' ? SmcState.Locating : SmcState.Handshake;
    smc.sessions.add(this);
  }

  /** Whether TCP's events belong to the session (not yet, or no longer, plain TCP). */
  get takesTcp(): boolean {
    // Closed too: what a peer writes on TCP after the SMC close (its ClcType.Closed) is not the app's.
    return this.state !== SmcState.Tcp;
  }

  /** Writes wait while the transport is being decided or changed. */
  get holdsWrites(): boolean {
    return this.state === SmcState.Syncing;
  }

  // ---- client: where is the peer (seed 003), then the offer ----------

  /** Asks the location service once for this connection; resolves when the SYN may go. */
  async locate(): Promise<void> {
    const cfg = this.smc.config;
    if (!cfg.enabled) return this.plain(cfg.offReason ?? 'smc-off');
    let loc: SmcLocation;
    try {
      loc = await this.smc.locate(this.remoteIp);
    } catch (err) {
      return this.plain(`location unavailable: ${(err as Error).message}`);
    }
    this.location = loc;
    if (this.state !== SmcState.Locating) return;
    if (!loc.node) return this.plain('peer outside the platform');
    if (loc.node === this.smc.lpar) return this.plain('loopback');
    if (this.proposalPaths() === 0) return this.plain('no SMC path to the peer');
    // Another CEC: only SMC-R can do, so ask for the link group while TCP connects. On one CEC it is asked only if the server picks R.
    if (!(this.proposalPaths() & SmcPath.D)) this.group = this.smc.linkGroup(loc.node);
    this.offered = true;
    this.state = SmcState.Handshake;
  }

  private proposalPaths(): number {
    const cfg = this.smc.config;
    const loc = this.location;
    let paths = 0;
    if (cfg.d && this.smc.smcd && loc?.cec === this.smc.cec) paths |= SmcPath.D;
    if (cfg.r) paths |= SmcPath.R;
    return paths;
  }

  /** TCP calls this for the SYN it sends (client) or the SYN-ACK (server, only if the client offered). */
  synOptions(): TcpOptions['experimental'] {
    if (this.role === 'client') return this.offered ? [smcSynOption()] : undefined;
    this.offered = this.peerOffered && this.smc.config.enabled;
    return this.offered ? [smcSynOption()] : undefined;
  }

  peerSynOptions(o: TcpOptions): void {
    this.peerOffered = hasSmcOption(o);
  }

  // ---- TCP events while the session holds them -----------------------

  tcpConnected(): void {
    if (this.state !== SmcState.Handshake) {
      this.hooks.ready();
      return;
    }
    if (this.role === 'client') {
      if (!this.offered) return this.toTcp(this.reason ?? 'smc-off', true);
      if (!this.peerOffered) return this.toTcp(declineText(DeclineReason.PeerNoSmc), true);
      const proposal: ClcProposal = { type: ClcType.Proposal, paths: this.proposalPaths(), lpar: this.smc.lpar, cec: this.smc.cec, ringBytes: this.smc.config.ringBytes };
      this.state = SmcState.WaitAccept;
      this.armTimer();
      this.hooks.tcpSend(emitClc(proposal));
      return;
    }
    if (!this.offered) return this.toTcp(this.peerOffered ? (this.smc.config.offReason ?? 'smc-off') : declineText(DeclineReason.PeerNoSmc), true);
    this.state = SmcState.WaitProposal;
    this.armTimer();
    if (this.reader.buffered > 0) this.drainClc();
  }

  tcpData(data: Buffer): void {
    if (this.state === SmcState.Closed) return;
    // Active on SMC-D too: the peer's fallback sync comes this way when its hypervisor session is lost (issue 11 item 7).
    this.reader.push(data);
    this.drainClc();
  }

  tcpEof(): void {
    this.tcpFinSeen = true;
    // Active: the SMC close flags end the stream; the TCP FIN can overtake the last CDC, so it is not yet a
    // signal. Should the close not follow (lost with a link), the stream is settled from what the CDCs
    // said, never left in CLOSE-WAIT for good (issue 11 item 3).
    if (this.state === SmcState.Active) {
      this.timer ??= setTimeout(() => this.closeNeverCame(), this.smc.config.clcTimeoutMs);
      return;
    }
    if (this.state === SmcState.Syncing) return this.peerFinishedUnsynced();
    if (this.state === SmcState.Draining) {
      // The peer closed without the CLC message it owed (it gave up too): what came is the app's, then EOF.
      this.drained();
      this.hooks.pushEof();
      return;
    }
    if (this.state === SmcState.WaitAccept || this.state === SmcState.WaitProposal || this.state === SmcState.WaitConfirm) {
      this.abort('ECONNRESET', 'the TCP connection closed during SMC negotiation');
    }
  }

  tcpClosed(code?: string): void {
    if (this.state === SmcState.Active) return;
    if (this.state === SmcState.Draining) return this.abort(code ?? 'ECONNRESET', 'the TCP connection closed before the CLC message it owed');
    if (this.state === SmcState.Handshake) {
      this.state = SmcState.Tcp;
      this.hooks.fail(code ?? 'ECONNRESET', 'the TCP connection failed');
      return;
    }
    this.abort(code ?? 'ECONNRESET', 'the TCP connection failed while SMC needed it');
  }

  private drainClc(): void {
    // Handshake: an answer is being worked out (awaits); what comes meanwhile (the client's decline after
    // its CLC timeout) waits in the reader until the next Wait state takes it.
    while (this.takesTcp && this.state !== SmcState.Handshake) {
      let msg: ClcMessage | undefined;
      try {
        msg = this.reader.next();
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        this.smc.stats.malformedClc++;
        refusals.warn(this.smc.log, { peer: this.remoteIp, err: err.message.slice(0, 200), state: this.state }, 'malformed CLC message: connection reset');
        this.abort('ECONNRESET', `malformed CLC message: ${err.message}`);
        return;
      }
      if (!msg) return;
      this.onClc(msg);
    }
  }

  /** One CLC message in the current state. */
  private onClc(msg: ClcMessage): void {
    // The peer closed cleanly and says what it sent; kept for a fallback that finds its TCP ended (peerFinishedUnsynced).
    if (msg.type === ClcType.Closed) {
      if (this.state === SmcState.Active || this.state === SmcState.Syncing) this.peerSentTotal = msg.sent;
      return;
    }
    switch (this.state) {
      case SmcState.WaitAccept:
        if (msg.type === ClcType.Accept) return void this.clientAccepted(msg);
        if (msg.type === ClcType.Decline) return this.declined(msg.reason);
        return this.protocolError(msg);
      case SmcState.WaitProposal:
        if (msg.type === ClcType.Proposal) return void this.serverProposal(msg);
        if (msg.type === ClcType.Decline) return this.declined(msg.reason);
        return this.protocolError(msg);
      case SmcState.WaitConfirm:
        if (msg.type === ClcType.Confirm) return this.serverConfirmed(msg);
        if (msg.type === ClcType.Decline) return this.declined(msg.reason);
        return this.protocolError(msg);
      case SmcState.Active:
      case SmcState.Syncing:
        if (msg.type === ClcType.FallbackSync) return this.peerSynced(msg.received);
        return this.protocolError(msg);
      case SmcState.Draining:
        // The answer that came too late, or the peer's own decline: dropped; the stream is plain TCP from here.
        if (msg.type === ClcType.FallbackSync) return this.protocolError(msg);
        return this.drained();
      default:
        return this.protocolError(msg);
    }
  }

  private protocolError(msg: ClcMessage): void {
    this.smc.stats.malformedClc++;
    this.abort('ECONNRESET', `unexpected CLC message type ${msg.type} in state ${this.state}`);
  }

  // ---- client: accept → confirm ---------------------------------------

  private async clientAccepted(a: ClcAccept): Promise<void> {
    this.state = SmcState.Handshake;
    this.clearTimer();
    const offeredPaths = this.proposalPaths();
    if ((a.path & offeredPaths) === 0) return this.decline(DeclineReason.ModeUnsupported);
    if (a.path === SmcPath.D) {
      let grant: SmbeGrant;
      try {
        grant = await this.smc.smcd!.hv.attach(a.token);
      } catch (err) {
        this.smc.log.warn({ peer: this.remoteIp, err: (err as Error).message }, 'SMC-D attach failed');
        return this.decline(DeclineReason.NoSmcDDevice);
      }
      if (this.state !== SmcState.Handshake) return;
      try {
        this.path = this.smcdPath(grant);
      } catch (err) {
        this.smc.smcd!.hv.release(grant.token);
        this.smc.log.warn({ peer: this.remoteIp, err: (err as Error).message }, 'SMC-D mapping failed');
        return this.decline(DeclineReason.InternalError);
      }
      this.hooks.tcpSend(emitClc({ type: ClcType.Confirm, path: SmcPath.D, lpar: this.smc.lpar, token: a.token, ringBytes: grant.ringBytes, links: [] }));
      return this.activate('SMC-D');
    }
    const group = await (this.group ?? this.smc.linkGroup(this.location!.node!));
    if (this.state !== SmcState.Handshake) return;
    if (!group || group.pick() < 0 || !group.complete) return this.decline(DeclineReason.NoActiveLink);
    const path = this.newSmcrPath(group);
    path.start({ token: a.token, ringBytes: a.ringBytes, links: a.links });
    this.path = path;
    const mine = path.describe();
    this.hooks.tcpSend(emitClc({ type: ClcType.Confirm, path: SmcPath.R, lpar: this.smc.lpar, token: mine.token, ringBytes: mine.ringBytes, links: mine.links }));
    this.activate('SMC-R');
  }

  // ---- server: proposal → accept, confirm -----------------------------

  private async serverProposal(p: ClcProposal): Promise<void> {
    this.state = SmcState.Handshake;
    this.clearTimer();
    const cfg = this.smc.config;
    let loc: SmcLocation;
    try {
      loc = await this.smc.locate(this.remoteIp);
    } catch {
      return this.decline(DeclineReason.InternalError);
    }
    if (this.state !== SmcState.Handshake) return;
    this.location = loc;
    // The proposal's names must be what the location service says of the address the SYN came from.
    if (loc.node !== p.lpar || loc.cec !== p.cec) return this.decline(DeclineReason.SyncError, 'proposal does not match the location of its address');
    const sameCec = loc.cec === this.smc.cec;
    if (p.paths & SmcPath.D && cfg.d && this.smc.smcd && sameCec) {
      try {
        this.grant = await this.smc.smcd.hv.alloc(p.lpar);
      } catch (err) {
        this.smc.log.info({ peer: p.lpar, err: (err as Error).message }, 'no SMC-D buffer element');
      }
      if (this.state !== SmcState.Handshake) return this.releaseGrant();
      if (this.grant) {
        this.state = SmcState.WaitConfirm;
        this.armTimer();
        this.hooks.tcpSend(emitClc({ type: ClcType.Accept, path: SmcPath.D, lpar: this.smc.lpar, token: this.grant.token, ringBytes: this.grant.ringBytes, links: [] }));
        if (this.reader.buffered > 0) this.drainClc();
        return;
      }
    }
    if (p.paths & SmcPath.R && cfg.r) {
      const group = await this.smc.linkGroup(p.lpar);
      if (this.state !== SmcState.Handshake) return;
      if (!group || group.pick() < 0 || !group.complete) return this.decline(DeclineReason.NoSmcRDevice);
      const path = this.newSmcrPath(group);
      this.path = path;
      const mine = path.describe();
      this.state = SmcState.WaitConfirm;
      this.armTimer();
      this.hooks.tcpSend(emitClc({ type: ClcType.Accept, path: SmcPath.R, lpar: this.smc.lpar, token: mine.token, ringBytes: mine.ringBytes, links: mine.links }));
      if (this.reader.buffered > 0) this.drainClc();
      return;
    }
    this.decline(p.paths & SmcPath.D && sameCec ? DeclineReason.NoMemory : DeclineReason.NoSmcDevice);
  }

  private serverConfirmed(c: ClcConfirm): void {
    this.clearTimer();
    if (this.grant) {
      if (c.path !== SmcPath.D || c.token !== this.grant.token) return this.decline(DeclineReason.SyncError);
      try {
        this.path = this.smcdPath(this.grant);
      } catch (err) {
        // The client is active on SMC-D since it sent the confirm: it is taken to TCP by the fallback sync, not a decline.
        this.smc.log.warn({ err: (err as Error).message }, 'SMC-D mapping failed: falling back to TCP');
        this.releaseGrant();
        this.hooks.ready();
        return this.syncToTcp(NOTHING_SENT, 'SMC-D could not be set up');
      }
      this.grant = undefined;
      return this.activate('SMC-D');
    }
    const path = this.path;
    if (!(path instanceof SmcrPath) || c.path !== SmcPath.R) return this.decline(DeclineReason.SyncError);
    path.start({ token: c.token, ringBytes: c.ringBytes, links: c.links });
    this.activate('SMC-R');
    // Every link went while the confirm was on its way (a blip on this side): the client already runs SMC-R, so
    // this side syncs and both go on over TCP (issue 11 item 4), rather than an SMC-R path with no link.
    if (path.link < 0) this.linksLost();
  }

  private smcdPath(grant: SmbeGrant): SmcdPath {
    const path = this.smc.smcd!.open(grant, this);
    path.onLost = () => this.linksLost();
    return path;
  }

  private newSmcrPath(group: LinkGroup): SmcrPath {
    let token = 0;
    while (token === 0) token = crypto.randomBytes(4).readUInt32BE(0);
    const path = new SmcrPath(group, token, this.smc.config.ringBytes, this);
    path.onLinksLost = () => this.linksLost();
    return path;
  }

  // ---- outcomes ---------------------------------------------------------

  private activate(mode: SmcMode): void {
    this.state = SmcState.Active;
    this.mode = mode;
    if (mode === 'SMC-D') this.smc.stats.connections.smcd++;
    else this.smc.stats.connections.smcr++;
    this.hooks.ready();
    // The stream may have asked for data (its _read) while TCP still carried the handshake: it will not ask
    // again before a push, so the data path starts reading now (seed 002 Fig. 9 step 951: a receive is pending).
    this.path?.resume();
    // Bytes that came with the CLC exchange's last message cannot be app data in SMC mode.
    if (this.reader.buffered > 0) this.drainClc();
  }

  /** Decline, then run plain TCP (seed 002, Fig. 4 step 405; the app sees no difference). */
  private decline(reason: number, diagnosis?: string): void {
    this.hooks.tcpSend(emitClc({ type: ClcType.Decline, reason, diagnosis }));
    this.toTcp(`declined by us: ${declineText(reason)}`, true);
  }

  private declined(reason: number): void {
    this.toTcp(`declined by peer: ${declineText(reason)}`, true);
  }

  private plain(reason: string): void {
    this.reason = reason;
    this.state = SmcState.Handshake;
  }

  /** Plain TCP from here on; `ready` when the app has not had the socket yet; `drain`: one CLC message is still owed (Draining). */
  private toTcp(reason: string, announce: boolean, drain = false): void {
    this.clearTimer();
    this.releaseGrant();
    if (this.path) {
      this.path.close(true);
      this.path = undefined;
    }
    this.reason = reason;
    this.mode = 'TCP';
    this.state = SmcState.Tcp;
    this.smc.stats.connections.tcp++;
    this.smc.countFallback(reason);
    if (drain) {
      this.state = SmcState.Draining;
      if (announce) this.hooks.ready();
      if (this.reader.buffered > 0) this.drainClc();
      return;
    }
    const rest = this.reader.takeRest();
    if (announce) this.hooks.ready();
    for (const chunk of rest) this.hooks.push(chunk);
  }

  private releaseGrant(): void {
    if (this.grant) this.smc.smcd?.hv.release(this.grant.token);
    this.grant = undefined;
  }

  /**
   * The CLC answer's deadline. It runs out only when TCP made no progress meanwhile: while our last CLC
   * message is unacknowledged, or the peer's segments still arrive, the answer is on its way through a
   * loaded network (retransmissions back off past 10 s) and the wait goes on, as plain TCP would; TCP's own
   * give-up ends a dead connection (issue 11 item 4: 300 concurrent connections, ETIMEDOUT in negotiation).
   */
  private armTimer(): void {
    this.clearTimer();
    const ms = this.smc.config.clcTimeoutMs;
    let seen = this.hooks.tcpProgress().segmentsIn;
    const expire = () => {
      const now = this.hooks.tcpProgress();
      if (now.unacked > 0 || now.segmentsIn !== seen) {
        seen = now.segmentsIn;
        this.timer = setTimeout(expire, ms);
        return;
      }
      this.timer = undefined;
      this.clcTimedOut(ms);
    };
    this.timer = setTimeout(expire, ms);
  }

  /**
   * No CLC answer and no TCP progress for `ms`. Waiting for the proposal or the accept, decline and run
   * plain TCP, as Linux falls back on a CLC timeout (SMC_CLC_DECL_TIMEOUT): the peer owes exactly one CLC
   * message (its proposal, or its accept or decline), which is dropped when it comes (Draining), and our
   * decline takes the peer to TCP too. Waiting for the confirm the client may already run SMC, so a
   * decline would not be clean there: that wait fails (ETIMEDOUT).
   */
  private clcTimedOut(ms: number): void {
    if (this.state !== SmcState.WaitAccept && this.state !== SmcState.WaitProposal) {
      this.abort('ETIMEDOUT', `no CLC answer within ${ms} ms (${this.state})`);
      return;
    }
    this.hooks.tcpSend(emitClc({ type: ClcType.Decline, reason: DeclineReason.ClcTimeout }));
    this.toTcp(`declined by us: ${declineText(DeclineReason.ClcTimeout)}`, true, true);
  }

  /** Draining: the CLC message owed is in (or will never come); what follows it is the app's. */
  private drained(): void {
    this.state = SmcState.Tcp;
    for (const chunk of this.reader.takeRest()) this.hooks.push(chunk);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Gives up on the connection: buffers back, socket failed. */
  private abort(code: string, why: string): void {
    if (this.state === SmcState.Closed) return;
    this.smc.log.info({ peer: this.remoteIp, code, why, state: this.state }, 'SMC connection failed');
    this.clearTimer();
    this.releaseGrant();
    this.path?.close(true);
    this.path = undefined;
    this.state = SmcState.Closed;
    this.smc.stats.resets++;
    this.smc.sessions.delete(this);
    this.hooks.fail(code, why);
  }

  // ---- SMC-R: every link lost → back to TCP (seed 002, Fig. 10 steps 1018-1021)

  // SMC-D takes the same way when the hypervisor session is lost (issue 11 item 7): SmcdPath.fallback.
  private linksLost(): void {
    const path = this.path;
    if (!path || this.state !== SmcState.Active) return;
    this.path = undefined;
    this.syncToTcp(path.fallback(), FALLBACK_REASON[path.mode]);
  }

  private syncToTcp(fb: SmcrFallback, reason: string): void {
    this.fallbackState = fb;
    this.fallbackReason = reason;
    this.state = SmcState.Syncing;
    this.smc.log.warn({ peer: this.remoteIp, received: fb.received }, `${reason}: falling back to TCP`);
    for (const chunk of fb.undelivered) this.push(chunk);
    this.hooks.tcpSend(emitClc({ type: ClcType.FallbackSync, received: fb.received }));
    // No CLC timer: the sync goes over TCP, which delivers it while the connection lives, and TCP's own
    // failure (or the peer's FIN, below) ends the wait. A 10 s timer reset connections whose TCP was alive
    // under load (issue 11 item 4: ETIMEDOUT "no CLC answer (syncing)").
    this.clearTimer();
    if (this.tcpFinSeen) this.peerFinishedUnsynced();
  }

  /**
   * The peer closed TCP before answering the sync (or without the SMC close in Active): its SMC side is
   * finished — it closes TCP only then — so it will not sync. If it said it was done writing, that CDC
   * carried its last producer cursor: everything it sent is here, and the stream ends as it would have
   * (no error; issue 11 item 4, the spurious ETIMEDOUT at close). So it is when that CDC went with the last
   * link but the peer's Closed message (written on TCP before its FIN) counts as many bytes as this side
   * received: 30 of 300 connections reset so under load, every byte of them here. Else its last data is lost: reset.
   */
  private peerFinishedUnsynced(): void {
    const fb = this.fallbackState!;
    // Its close CDC may have been lost with the last link; then its Closed message says whether every byte is here.
    if (!fb.peerDoneWriting && fb.received !== this.peerSentTotal) {
      return this.abort('ECONNRESET', 'the peer closed during the SMC-R fallback without its last data');
    }
    this.clearTimer();
    this.state = SmcState.Tcp;
    this.mode = 'TCP';
    this.reason = this.fallbackReason;
    this.smc.stats.tcpFailbacks++;
    this.smc.countFallback(this.reason);
    fb.pending?.cb(Object.assign(new Error('write EPIPE: the peer closed'), { code: 'EPIPE' }));
    this.eof();
    this.hooks.flushHeldWrites();
    if (fb.doneWriting) this.hooks.tcpClose();
  }

  /** Active, the peer's TCP FIN long in, its SMC close never came (it went with a link): settle from the CDCs. */
  private closeNeverCame(): void {
    this.timer = undefined;
    const path = this.path;
    if (this.state !== SmcState.Active || !(path instanceof SmcrPath)) return;
    this.smc.log.warn({ peer: this.remoteIp }, 'the peer closed TCP but its SMC-R close never came');
    this.fallbackState = path.fallback();
    this.fallbackReason = FALLBACK_REASON['SMC-R'];
    this.path = undefined;
    this.state = SmcState.Syncing;
    for (const chunk of this.fallbackState.undelivered) this.push(chunk);
    this.peerFinishedUnsynced();
  }

  private peerSynced(peerReceived: number): void {
    // The peer lost the links first and this side has not noticed yet: go too, then take its sync.
    if (this.state === SmcState.Active) this.linksLost();
    if ((this.state as SmcState) !== SmcState.Syncing) return;
    const fb = this.fallbackState!;
    const resend = fb.resendFrom(peerReceived);
    if (!resend) return this.abort('ECONNRESET', `fallback sync error: the peer has ${peerReceived} bytes, which this side no longer holds`);
    this.clearTimer();
    this.state = SmcState.Tcp;
    this.mode = 'TCP';
    this.reason = this.fallbackReason;
    this.smc.stats.tcpFailbacks++;
    this.smc.countFallback(this.reason);
    for (const chunk of resend) this.hooks.tcpSend(chunk);
    const p = fb.pending;
    if (p) {
      this.hooks.tcpSend(p.chunk.subarray(p.off));
      p.cb();
    }
    this.hooks.flushHeldWrites();
    if (fb.doneWriting) this.hooks.tcpClose();
    const rest = this.reader.takeRest();
    for (const chunk of rest) this.push(chunk);
  }

  // ---- SmcSocketSide: the data path's calls ----------------------------

  deliver(data: Buffer): boolean {
    return this.push(data);
  }

  private push(data: Buffer): boolean {
    if (this.eofPushed) return false;
    return this.hooks.push(data);
  }

  eof(): void {
    if (this.eofPushed) return;
    this.eofPushed = true;
    this.hooks.pushEof();
  }

  reset(reason: string): void {
    this.path = undefined;
    this.abort('ECONNRESET', reason);
  }

  finished(): void {
    // The last word on TCP before its FIN (ClcType.Closed): should our close CDC be lost with the last link,
    // the peer, falling back, learns from this whether it has every byte we sent.
    if (this.path instanceof SmcrPath) this.hooks.tcpSend(emitClc({ type: ClcType.Closed, sent: this.path.sentTotal }));
    this.clearTimer();
    this.path = undefined;
    this.state = SmcState.Closed;
    this.smc.sessions.delete(this);
    this.hooks.finished();
  }

  /** The socket is being destroyed. */
  close(abort: boolean): void {
    this.clearTimer();
    this.releaseGrant();
    this.path?.close(abort);
    this.path = undefined;
    this.state = SmcState.Closed;
    this.smc.sessions.delete(this);
  }

  info(): Record<string, unknown> {
    return {
      transport: this.state === SmcState.Tcp && this.reason ? `TCP (fallback: ${this.reason})` : this.mode,
      smcState: this.state,
      ...(this.reason ? { fallbackReason: this.reason } : {}),
      ...(this.path ? { smc: this.path.info() } : {}),
    };
  }
}
