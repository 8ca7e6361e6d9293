import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { ControlChannel } from '../../shared/control/channel.ts';
import { PRIVILEGED, authenticatePeer, type Peer, type Role } from '../../shared/control/auth.ts';
import type { ControlMessage } from '../../shared/control/codec.ts';
import { refusals } from '../../shared/runtime/refusal-log.ts';
import type { Link } from '../../shared/link/link.ts';
import { platformNodes, type Platform } from '../../shared/platform/platform.ts';
import { FM_REQUESTS, RVI_ID_MAX, VI_MAX, decodeFmRequest, rviRecord, type FmReplies, type FmRequest, type FmStatus, type Location, type NodeNotice, type NodeWelcome, type SwitchNotice, type RviRecord, type ViEntry } from '../../shared/protocol/fm.ts';
import { type Check, FieldError, arrayOf, int, recordOf, shape } from '../../shared/protocol/check.ts';
import type { Purpose } from '../../shared/rclan/purpose.ts';
import type { RviInfo } from '../../shared/rclan/rclan.ts';
import { StateFileError, readStateFile, writeStateFile } from '../../shared/runtime/state-file.ts';

export type { RviRecord };

/** How long a change to the tables may wait before they are written (persistSoon). */
const PERSIST_MS = 250;

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

/** The persisted tables, checked field by field when read back (issue 11 item 8: a corrupt file is refused, not taken for a first start). */
const persisted: Check<Persisted> = (v, f) => {
  const p = shape({ nextRvi: int(1, RVI_ID_MAX + 1), nextVi: recordOf(int(1, VI_MAX + 1)), rvis: arrayOf(rviRecord, 1 << 20) })(v, f);
  const ids = new Set<number>();
  const vis = new Set<string>();
  p.rvis.forEach((r, i) => {
    if (ids.has(r.id) || r.id >= p.nextRvi) throw new FieldError(`rvis[${i}].id`, `an RVI number below nextRvi (${p.nextRvi}) and not used twice`, r.id);
    ids.add(r.id);
    for (const [node, vi] of [[r.a, r.viA], [r.b, r.viB]] as const) {
      if (vis.has(`${node}/${vi}`)) throw new FieldError(`rvis[${i}]`, `VI ${vi} of ${node} used once`, r.id);
      vis.add(`${node}/${vi}`);
    }
  });
  return p;
};

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
  /** The virtual LANs each registered address is on, as control nodes published them (locate's scope, issue 11 item 11). */
  private readonly vlansOfEndpoint = new Map<string, Set<string>>();
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
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.stateFile = path.join(dataDir, 'fabric.json');
    // Absent: a first start. Corrupt: the constructor throws naming the file, so the process fails
    // at start and the supervisor shows why (issue 11 item 8) instead of pushing empty tables.
    const restored = readStateFile(this.stateFile, persisted);
    if (restored) {
      for (const r of restored.rvis) {
        if (!this.ports.has(r.a) || !this.ports.has(r.b)) throw new StateFileError(this.stateFile, `RVI ${r.id} joins ${r.a} and ${r.b}, not both nodes of this platform`);
      }
      this.state = restored;
      this.log.info({ rvis: this.state.rvis.length }, 'fabric tables restored');
    }
  }

  /** RVIs by (pair, purpose): create's look-up is a map, not a scan (issue 10 item 2: RVI creation cheap). */
  private readonly byPair = new Map<string, RviRecord>();
  private persistTimer: NodeJS.Timeout | undefined;
  /** When the tables were last written (performance.now()). */
  private writtenAt = -Infinity;

  private static pairKey(a: string, b: string, purpose: string): string {
    return a < b ? `${purpose}|${a}|${b}` : `${purpose}|${b}|${a}`;
  }

  private indexed(): Map<string, RviRecord> {
    if (this.byPair.size === 0 && this.state.rvis.length > 0) for (const r of this.state.rvis) this.byPair.set(FabricManager.pairKey(r.a, r.b, r.purpose), r);
    return this.byPair;
  }

  /**
   * The tables are written at most once per PERSIST_MS however many RVIs were
   * made meanwhile (a change after a quiet spell is written at once). A write is a whole-file rewrite with two fsyncs that holds
   * the event loop; once per turn of the loop (as before) it ran once per
   * request in a burst of first ARPs, and the control nodes' rvi-create round
   * trip took 671 ms at the median (1,054 ms p90) in a 32-member pingall, each
   * write 24 ms at the median and up to 172 ms on this shared disk, which the
   * ARPs held for it and the pings behind them could not wait out (issue 10
   * item 2: RVI creation cheap). The last changes are written at shutdown
   * (flush) too.
   */
  private persistSoon(): void {
    if (this.persistTimer) return;
    const wait = this.writtenAt + PERSIST_MS - performance.now();
    if (wait <= 0) return this.persist();
    this.persistTimer = setTimeout(() => {
      try {
        this.flush();
      } catch (err) {
        // The tables stay in memory and the next change writes them again; a full disk does not end the manager.
        this.log.error({ file: this.stateFile, err: (err as Error).message }, 'fabric tables could not be written');
      }
    }, wait);
    this.persistTimer.unref();
  }

  /** Writes the tables now if a change is waiting. */
  flush(): void {
    if (!this.persistTimer) return;
    clearTimeout(this.persistTimer);
    this.persistTimer = undefined;
    this.persist();
  }

  private persist(): void {
    this.writtenAt = performance.now();
    writeStateFile(this.stateFile, this.state);
  }

  async accept(link: Link): Promise<void> {
    const ch = new ControlChannel(link, this.log);
    let peer: Peer;
    try {
      peer = await authenticatePeer(ch, this.key, (name) => this.roles.get(name));
    } catch (err) {
      this.stats.authFailures++;
      refusals.warn(this.log, { remote: link.remote, err: (err as Error).message.slice(0, 200) }, 'authentication failed');
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
        refusals.warn(this.log, { node: name, role, verb, request }, 'refused: processing nodes may not establish paths');
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
        return this.setLocation(req.endpoint, req.node, req.vlan);
      case 'rvi-list':
        return { rvis: privileged ? this.state.rvis : this.ownRvis(caller) };
      case 'locate':
        return privileged || this.sharesVlan(caller, req.endpoint) ? this.locate(req.endpoint) : { endpoint: req.endpoint, node: null, cec: null };
      case 'fm-status':
        return privileged ? this.status() : { ...this.status(), rvis: this.ownRvis(caller) };
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

  /**
   * The node's next VI number: counting up from 1, and past VI_MAX (the
   * switch's 20-bit key, issue 11 item 13) round again to the lowest number
   * that none of the node's RVIs holds; when every one is held the RVI is refused.
   */
  private allocVi(node: string): number {
    let vi = this.state.nextVi[node] ?? 1;
    if (vi > VI_MAX) {
      const held = new Set(this.state.rvis.flatMap((r) => (r.a === node ? [r.viA] : r.b === node ? [r.viB] : [])));
      vi = 1;
      while (held.has(vi) && vi <= VI_MAX) vi++;
      if (vi > VI_MAX) throw new Error(`${node} has no free VI number: all ${VI_MAX} are held by its RVIs`);
      this.state.nextVi[node] = VI_MAX + 1;
      return vi;
    }
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
    if (this.state.nextRvi > RVI_ID_MAX) throw new Error(`no RVI number left: all ${RVI_ID_MAX} have been handed out this boot`);
    const viA = this.allocVi(a);
    const viB = this.allocVi(b);
    const r: RviRecord = { id: this.state.nextRvi++, a, b, purpose, viA, viB };
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

  private setLocation(endpoint: string, node: string, vlan?: string): { endpoint: string; node: string } {
    if (!this.roles.has(node)) throw new Error(`"${node}" is not a node of this platform`);
    if (this.location.get(endpoint) !== node) this.vlansOfEndpoint.delete(endpoint);
    this.location.set(endpoint, node);
    if (vlan !== undefined) {
      const set = this.vlansOfEndpoint.get(endpoint) ?? new Set<string>();
      set.add(vlan);
      this.vlansOfEndpoint.set(endpoint, set);
    }
    return { endpoint, node };
  }

  /** A partition sees the RVIs it is an end of, no others (issue 11 item 11). */
  private ownRvis(caller: string): RviRecord[] {
    return this.state.rvis.filter((r) => r.a === caller || r.b === caller);
  }

  /** The virtual LANs `node` has an address registered on. */
  private vlansOf(node: string): Set<string> {
    const out = new Set<string>();
    for (const [endpoint, n] of this.location) if (n === node) for (const v of this.vlansOfEndpoint.get(endpoint) ?? []) out.add(v);
    return out;
  }

  /**
   * Whether a partition may learn where `endpoint` lives: only an address on a
   * virtual LAN it is on itself, or a node it shares one with, or itself (seed
   * 003 asks where a peer of a connection lives; issue 11 item 11: no map of
   * the whole platform for any partition).
   */
  private sharesVlan(caller: string, endpoint: string): boolean {
    if (endpoint === caller) return true;
    const mine = this.vlansOf(caller);
    const theirs = this.roles.has(endpoint) ? this.vlansOf(endpoint) : (this.vlansOfEndpoint.get(endpoint) ?? new Set<string>());
    for (const v of theirs) if (mine.has(v)) return true;
    return false;
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
