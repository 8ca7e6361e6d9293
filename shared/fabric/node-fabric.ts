import type { Logger } from 'pino';
import { ControlChannel } from '../control/channel.ts';
import { authenticateTo } from '../control/auth.ts';
import type { ControlMessage } from '../control/codec.ts';
import { connectLink } from '../link/transport.ts';
import { decodeFmReply, decodeNodeNotice, type FmReplies, type FmRequest, type NodeNotice, type NodeWelcome } from '../protocol/fm.ts';
import type { Purpose } from '../rclan/purpose.ts';
import { Rclan, type RviInfo } from '../rclan/rclan.ts';
import type { Rvi } from '../rclan/rvi.ts';
import { FabricNic } from './fabric-nic.ts';

export interface NodeFabricOptions {
  name: string;
  credential: Buffer;
  fmUrl: string;
  log: Logger;
}

/**
 * A node's whole attachment to the fabric: its session with the fabric
 * manager (which tells it its RVIs and the planes' addresses), one NIC per
 * plane, and the RCLAN layer above them. Control nodes and LPARs both use it;
 * only the fabric manager's checks differ in what each may ask.
 */
export class NodeFabric {
  rclan!: Rclan;
  nics!: [FabricNic, FabricNic];
  planes: string[] = [];
  port = 0;
  onRviAdded: (rvi: Rvi) => void = () => {};
  onRviRemoved: (rvi: Rvi) => void = () => {};
  onFmState: (connected: boolean) => void = () => {};
  private fm?: ControlChannel;
  private stopped = false;
  private readonly early: Array<{ add?: RviInfo; del?: number }> = [];
  private readonly rviWaiters = new Set<{ peer: string; purpose: Purpose; resolve: (rvi: Rvi) => void }>();
  /** Fabric manager messages that did not decode: counted and dropped. */
  malformedFm = 0;

  constructor(private readonly opts: NodeFabricOptions) {}

  get fmConnected(): boolean {
    return this.fm !== undefined && !this.fm.link.closed;
  }

  /** Resolves once the fabric manager has welcomed the node; planes attach in the background. */
  async start(): Promise<void> {
    let welcome: NodeWelcome | undefined;
    for (let backoff = 50; !welcome; backoff = Math.min(1000, backoff * 2)) {
      try {
        welcome = await this.connectFm();
      } catch (err) {
        if (this.stopped) throw err;
        this.opts.log.debug({ err: (err as Error).message }, 'fabric manager not reachable, retrying');
        await new Promise((r) => setTimeout(r, backoff));
      }
    }
    const planes = welcome.planes;
    this.planes = planes.map((p) => p.name);
    const log = this.opts.log.child({ component: 'fabric-nic' });
    const events = {
      frame: (leg: number, frame: Buffer) => this.rclan.receive(leg, frame),
      attached: (leg: number) => this.rclan.portAttached(leg),
      detached: (leg: number) => this.rclan.portDetached(leg),
      drained: () => this.rclan.portDrained(),
    };
    this.nics = [
      new FabricNic(planes[0].name, 0, planes[0].url, this.opts.name, this.opts.credential, events, log),
      new FabricNic(planes[1].name, 1, planes[1].url, this.opts.name, this.opts.credential, events, log),
    ];
    this.rclan = new Rclan(this.nics, welcome.rclan, this.opts.log.child({ component: 'rclan' }));
    this.syncRvis(welcome.rvis);
    for (const e of this.early.splice(0)) {
      if (e.add) this.addRvi(e.add);
      else if (e.del !== undefined) this.removeRvi(e.del);
    }
    for (const nic of this.nics) nic.start();
  }

  /** A notification from the fabric manager, checked; undefined (counted, logged) when it does not decode. */
  private notice(msg: ControlMessage): NodeNotice | undefined {
    const d = decodeNodeNotice(msg);
    if (d.ok) return d.value;
    this.malformedFm++;
    this.opts.log.warn({ reason: d.reason }, 'malformed fabric manager message dropped');
    return undefined;
  }

  private async connectFm(): Promise<NodeWelcome> {
    const link = await connectLink(this.opts.fmUrl);
    const ch = new ControlChannel(link, this.opts.log.child({ component: 'fm-client' }));
    // Notifications can arrive in the same read as the welcome, before the RCLAN layer exists: keep them in order.
    ch.handle('rvi-add', (m) => {
      const n = this.notice(m);
      if (n?.t !== 'rvi-add') return;
      if (this.rclan) this.addRvi(n.rvi);
      else this.early.push({ add: n.rvi });
    });
    ch.handle('rvi-del', (m) => {
      const n = this.notice(m);
      if (n?.t !== 'rvi-del') return;
      if (this.rclan) this.removeRvi(n.vi);
      else this.early.push({ del: n.vi });
    });
    const welcome = this.notice(await authenticateTo(ch, this.opts.name, this.opts.credential));
    if (welcome?.t !== 'welcome') {
      ch.close();
      throw new Error('the fabric manager\'s welcome did not decode');
    }
    this.fm = ch;
    this.port = welcome.port;
    this.onFmState(true);
    ch.onClose(() => {
      this.onFmState(false);
      // The fabric manager is not on the data path: RVIs keep working while it is away; rejoin for news.
      if (!this.stopped) void this.reconnectFm();
    });
    return welcome;
  }

  private async reconnectFm(): Promise<void> {
    let backoff = 100;
    while (!this.stopped) {
      await new Promise((r) => setTimeout(r, backoff));
      try {
        const welcome = await this.connectFm();
        this.syncRvis(welcome.rvis);
        return;
      } catch {
        backoff = Math.min(1000, backoff * 2);
      }
    }
  }

  private syncRvis(list: RviInfo[]): void {
    const keep = new Set(list.map((r) => r.vi));
    for (const rvi of [...this.rclan.rvis.values()]) if (!keep.has(rvi.vi)) this.removeRvi(rvi.vi);
    for (const info of list) this.addRvi(info);
  }

  private addRvi(info: RviInfo): void {
    const had = this.rclan.rvis.get(info.vi);
    const rvi = this.rclan.add(info);
    if (had === rvi) return;
    this.onRviAdded(rvi);
    for (const w of this.rviWaiters) {
      if (w.peer === rvi.peer && w.purpose === rvi.purpose) {
        this.rviWaiters.delete(w);
        w.resolve(rvi);
      }
    }
  }

  private removeRvi(vi: number): void {
    const rvi = this.rclan.rvis.get(vi);
    if (!rvi) return;
    this.rclan.remove(vi);
    this.onRviRemoved(rvi);
  }

  /**
   * A request to the fabric manager (what it allows depends on who this
   * node is); resolves with its checked reply, rejects with its refusal or
   * with why the reply did not decode.
   */
  async request<R extends FmRequest>(msg: R, timeoutMs?: number): Promise<FmReplies[R['t']]> {
    if (!this.fm) throw new Error('not connected to the fabric manager');
    const d = decodeFmReply<R['t']>(msg.t, await this.fm.request(msg as unknown as ControlMessage, timeoutMs));
    if (d.ok) return d.value;
    this.malformedFm++;
    throw new Error(d.reason);
  }

  /** Resolves when the RVI to `peer` for `purpose` exists here. */
  waitForRvi(peer: string, purpose: Purpose, timeoutMs = 10_000): Promise<Rvi> {
    const found = this.rclan.find(peer, purpose);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = {
        peer,
        purpose,
        resolve: (rvi: Rvi) => {
          clearTimeout(timer);
          resolve(rvi);
        },
      };
      const timer = setTimeout(() => {
        this.rviWaiters.delete(waiter);
        reject(new Error(`no RVI to ${peer} (${purpose}) within ${timeoutMs} ms`));
      }, timeoutMs);
      this.rviWaiters.add(waiter);
    });
  }

  stop(): void {
    this.stopped = true;
    this.rclan?.close();
    for (const nic of this.nics ?? []) nic.stop();
    this.fm?.close();
  }
}
