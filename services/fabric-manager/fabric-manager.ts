import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { ControlChannel } from '../../shared/control/channel.ts';
import { PRIVILEGED, authenticatePeer, type Peer, type Role } from '../../shared/control/auth.ts';
import type { ControlMessage } from '../../shared/control/codec.ts';
import type { Link } from '../../shared/link/link.ts';
import { platformNodes, type Platform } from '../../shared/platform/platform.ts';
import { FM_REQUESTS, decodeFmRequest, type FmReplies, type FmRequest, type FmStatus, type Location, type NodeNotice, type NodeWelcome, type SwitchNotice, type RviRecord, type ViEntry } from '../../shared/protocol/fm.ts';
import type { Purpose } from '../../shared/rclan/purpose.ts';
import type { RviInfo } from '../../shared/rclan/rclan.ts';

export type { RviRecord };

/** Requests that make or unmake paths, or move an address: only control nodes and management may (seed 004). */
const PATH_VERBS: Partial<Record<FmRequest['t'], string>> = {
  'rvi-create': 'create RVIs',
  'rvi-destroy': 'destroy RVIs',
  'location-set': 'change the location table',
};

interface Persisted {
  nextRvi: number;
  nextVi: Record<string, number>;
  rvis: RviRecord[];
}

/**
 * The switch manager (seed 004, "2. RVI Mapping And Management": the virtual
 * LAN server creates and removes RVIs through calls to the switch manager).
 * It owns both planes' port and VI tables; it creates and destroys RVIs only
 * for privileged callers — control nodes and management — and refuses and
 * logs a processing node's request ("the individual processing nodes are not
 * permitted to establish such paths"). It also answers where an endpoint
 * lives (seed 003's virtualization management mechanism).
 *
 * Its tables are kept in its data directory, so a restarted manager hands the
 * same RVIs back to the switches and nodes that rejoin it.
 */
export class FabricManager {
  readonly stats = { created: 0, destroyed: 0, refused: 0, authFailures: 0, malformed: 0 };
  private readonly roles = new Map<string, Role>();
  private readonly ports = new Map<string, number>();
  private readonly cecOf = new Map<string, string>();
  private readonly location = new Map<string, string>();
  private readonly sessions = new Map<string, ControlChannel>();
  private readonly switches = new Map<string, ControlChannel>();
  private state: Persisted = { nextRvi: 1, nextVi: {}, rvis: [] };
  private readonly stateFile: string;
  private readonly planeUrls: NodeWelcome['planes'];

  constructor(
    private readonly platform: Platform,
    private readonly key: Buffer,
    planeUrls: Array<{ name: string; url: string }>,
    dataDir: string,
    private readonly log: Logger,
  ) {
    if (planeUrls.length !== 2) throw new Error(`a fabric has two planes, ${planeUrls.length} given`);
    this.planeUrls = [planeUrls[0], planeUrls[1]];
    for (const n of platformNodes(platform)) {
      this.roles.set(n.name, n.role);
      this.ports.set(n.name, n.port);
      if (n.cec) this.cecOf.set(n.name, n.cec);
    }
    for (const p of platform.planes) this.roles.set(`plane-${p}`, 'fabric-switch');
    this.roles.set('mgmt', 'mgmt');
    fs.mkdirSync(dataDir, { recursive: true });
    this.stateFile = path.join(dataDir, 'fabric.json');
    try {
      this.state = JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as Persisted;
      this.log.info({ rvis: this.state.rvis.length }, 'fabric tables restored');
    } catch {
      /* first start */
    }
  }

  /** RVIs by (pair, purpose): create's look-up is a map, not a scan (issue 10 item 2: RVI creation cheap). */
  private readonly byPair = new Map<string, RviRecord>();
  private persistQueued = false;

  private static pairKey(a: string, b: string, purpose: string): string {
    return a < b ? `${purpose}|${a}|${b}` : `${purpose}|${b}|${a}`;
  }

  private indexed(): Map<string, RviRecord> {
    if (this.byPair.size === 0 && this.state.rvis.length > 0) for (const r of this.state.rvis) this.byPair.set(FabricManager.pairKey(r.a, r.b, r.purpose), r);
    return this.byPair;
  }

  /**
   * The tables are written once per turn of the event loop however many RVIs
   * that turn made: a burst of first ARPs (a `pingall` of 256 partitions makes
   * 32,640 RVIs) would otherwise rewrite the whole file per RVI.
   */
  private persistSoon(): void {
    if (this.persistQueued) return;
    this.persistQueued = true;
    setImmediate(() => {
      this.persistQueued = false;
      this.persist();
    });
  }

  private persist(): void {
    const tmp = `${this.stateFile}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.state));
    fs.renameSync(tmp, this.stateFile);
  }

  async accept(link: Link): Promise<void> {
    const ch = new ControlChannel(link, this.log);
    let peer: Peer;
    try {
      peer = await authenticatePeer(ch, this.key, (name) => this.roles.get(name));
    } catch (err) {
      this.stats.authFailures++;
      this.log.warn({ remote: link.remote, err: (err as Error).message }, 'authentication failed');
      ch.send({ t: 'refused', reason: (err as Error).message });
      setTimeout(() => link.close(), 50);
      return;
    }
    const { name, role } = peer;
    if (role === 'fabric-switch') {
      const plane = name.slice('plane-'.length);
      this.switches.get(plane)?.close();
      this.switches.set(plane, ch);
      ch.onClose(() => {
        if (this.switches.get(plane) === ch) this.switches.delete(plane);
      });
      ch.send({ t: 'welcome', ports: [...this.ports], vis: this.state.rvis.map((r) => this.entry(r)) } satisfies SwitchNotice);
      this.log.info({ plane }, 'switch joined');
      return;
    }
    if (role !== 'mgmt') {
      this.sessions.get(name)?.close();
      this.sessions.set(name, ch);
      ch.onClose(() => {
        if (this.sessions.get(name) === ch) this.sessions.delete(name);
      });
    }
    const privileged = PRIVILEGED.has(role);
    // One checked decoder for every request; a malformed one is counted and refused with the reason.
    const serve = (m: ControlMessage): unknown => {
      const d = decodeFmRequest(m);
      if (!d.ok) {
        this.stats.malformed++;
        throw new Error(d.reason);
      }
      const req = d.value;
      const verb = PATH_VERBS[req.t];
      if (verb && !privileged) {
        this.stats.refused++;
        const request = req.t === 'rvi-create' ? { a: req.a, b: req.b, purpose: req.purpose } : req;
        this.log.warn({ node: name, role, verb, request }, 'refused: processing nodes may not establish paths');
        throw new Error(`permission denied: ${role} "${name}" may not ${verb} (only control nodes and management may)`);
      }
      return this.answer(req, name, privileged);
    };
    for (const t of FM_REQUESTS) ch.handle(t, serve);
    ch.send({
      t: 'welcome',
      port: this.ports.get(name) ?? 0,
      planes: this.planeUrls,
      rclan: this.platform.rclan,
      rvis: this.rvisOf(name),
    } satisfies NodeWelcome);
    this.log.info({ node: name, role }, 'node joined');
  }

  private answer(req: FmRequest, caller: string, privileged: boolean): FmReplies[FmRequest['t']] {
    switch (req.t) {
      case 'rvi-create':
        return { rvi: this.create(req.a, req.b, req.purpose) };
      case 'rvi-destroy':
        return this.destroy(req.id);
      case 'location-set':
        return this.setLocation(req.endpoint, req.node);
      case 'rvi-list':
        return { rvis: privileged ? this.state.rvis : this.state.rvis.filter((r) => r.a === caller || r.b === caller) };
      case 'locate':
        return this.locate(req.endpoint);
      case 'fm-status':
        return this.status();
    }
  }

  private entry(r: RviRecord): ViEntry {
    return [r.id, this.ports.get(r.a)!, r.viA, this.ports.get(r.b)!, r.viB];
  }

  private infoFor(r: RviRecord, node: string): RviInfo {
    return node === r.a ? { id: r.id, vi: r.viA, peer: r.b, purpose: r.purpose } : { id: r.id, vi: r.viB, peer: r.a, purpose: r.purpose };
  }

  private rvisOf(node: string): RviInfo[] {
    return this.state.rvis.filter((r) => r.a === node || r.b === node).map((r) => this.infoFor(r, node));
  }

  private allocVi(node: string): number {
    const vi = this.state.nextVi[node] ?? 1;
    this.state.nextVi[node] = vi + 1;
    return vi;
  }

  /** Creates the RVI (one VI per plane, same VI numbers on both), or returns the existing one. */
  create(a: string, b: string, purpose: Purpose): RviRecord {
    for (const n of [a, b]) {
      const role = this.roles.get(n);
      if (role !== 'lpar' && role !== 'control-node') throw new Error(`"${n}" is not a node of this platform`);
    }
    if (a === b) throw new Error('an RVI needs two different nodes');
    const existing = this.indexed().get(FabricManager.pairKey(a, b, purpose));
    if (existing) return existing;
    const r: RviRecord = { id: this.state.nextRvi++, a, b, purpose, viA: this.allocVi(a), viB: this.allocVi(b) };
    this.state.rvis.push(r);
    this.indexed().set(FabricManager.pairKey(a, b, purpose), r);
    this.persistSoon();
    for (const sw of this.switches.values()) sw.send({ t: 'vi-add', entries: [this.entry(r)] } satisfies SwitchNotice);
    this.sessions.get(a)?.send({ t: 'rvi-add', rvi: this.infoFor(r, a) } satisfies NodeNotice);
    this.sessions.get(b)?.send({ t: 'rvi-add', rvi: this.infoFor(r, b) } satisfies NodeNotice);
    this.stats.created++;
    this.log.info({ rvi: r.id, a, b, purpose }, 'RVI created');
    return r;
  }

  destroy(id: number): { destroyed: number } {
    const i = this.state.rvis.findIndex((r) => r.id === id);
    if (i < 0) throw new Error(`no RVI ${id}`);
    const [r] = this.state.rvis.splice(i, 1);
    this.indexed().delete(FabricManager.pairKey(r.a, r.b, r.purpose));
    this.persistSoon();
    for (const sw of this.switches.values()) sw.send({ t: 'vi-del', rvis: [id] } satisfies SwitchNotice);
    this.sessions.get(r.a)?.send({ t: 'rvi-del', vi: r.viA } satisfies NodeNotice);
    this.sessions.get(r.b)?.send({ t: 'rvi-del', vi: r.viB } satisfies NodeNotice);
    this.stats.destroyed++;
    this.log.info({ rvi: id, a: r.a, b: r.b }, 'RVI destroyed');
    return { destroyed: id };
  }

  private setLocation(endpoint: string, node: string): { endpoint: string; node: string } {
    if (!this.roles.has(node)) throw new Error(`"${node}" is not a node of this platform`);
    this.location.set(endpoint, node);
    return { endpoint, node };
  }

  /** Which node and CEC an endpoint (node name, or an address a control node registered) lives on. */
  locate(endpoint: string): Location & { endpoint: string } {
    const node = this.roles.has(endpoint) ? endpoint : (this.location.get(endpoint) ?? null);
    return { endpoint, node, cec: node ? (this.cecOf.get(node) ?? null) : null };
  }

  status(): FmStatus {
    return {
      planes: this.platform.planes.map((p) => ({ plane: p, switchConnected: this.switches.has(p) })),
      nodes: [...this.ports].map(([name, port]) => ({ name, port, role: this.roles.get(name) ?? 'unknown', connected: this.sessions.has(name), cec: this.cecOf.get(name) ?? null })),
      rvis: this.state.rvis,
      stats: this.stats,
    };
  }
}
