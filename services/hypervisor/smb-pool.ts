import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { SharedFile } from '../../shared/shm/shm-file.ts';
import { HvError, HvErrorCode, type HvStatus, type SmbeGrant } from '../../shared/protocol/hv.ts';
import { CloseFlag, SMB_HEADER_BYTES, SmbView, checkGeometry, smbBytes, smbFileName, smbInstanceFileName, type SmbGeometry } from '../../shared/smc/smb.ts';

/** One SMB file: the shared memory buffer of one pair of partitions (seed 002, Fig. 2 item 221, Fig. 5). */
export interface SmbFile {
  id: number;
  path: string;
  /** The pair as [side 0, side 1]: side 0 is the name that sorts first. */
  pair: [string, string];
  /** The file, kept open to reserve each element's pages before its first use. */
  file: SharedFile;
  view: SmbView;
  slots: Array<SmbElement | undefined>;
  /** Elements whose pages are reserved (they stay so for the life of the file). */
  reserved: boolean[];
  /** Per side: that partition said it maps the file (smb-mapped), and keeps it mapped until smb-gone. */
  mapped: [boolean, boolean];
  /** The file still has its name in the pool directory (until both sides map it). */
  linked: boolean;
  /** A partition's session ended while it held this SMB: that process may still touch it (it is not known dead). */
  abandoned: boolean;
  inUse: number;
}

/** One SMBE handed to a connection (seed 002, Fig. 4 step 425). */
export interface SmbElement {
  token: number;
  smb: SmbFile;
  index: number;
  /** The partition that asked for it; the other one may only attach. */
  allocator: string;
  /** Whether the other partition attached. */
  attached: boolean;
  /** Per side: that partition let go (released, or its session ended). */
  released: [boolean, boolean];
}

/** A refused request; `cause` names the kind of refusal, so each is logged once, not once per attempt. */
export class PoolRefusal extends HvError {
  constructor(
    code: string,
    readonly cause: string,
    detail: string,
  ) {
    super(code, detail);
  }
}

/** What became of one element when a partition's session ended. */
export interface Abandoned {
  element: SmbElement;
  /** Freed at once: the peer had let go already or never attached. */
  freed: boolean;
  /** The surviving peer, to be signalled: Abort is set in the dead side's flags word. */
  notify?: string;
}

/**
 * The shared memory pool of one CEC (seed 002, "a shared memory pool is
 * memory shared among one or more LPARs in a CEC"): one SMB file per pair of
 * partitions that have connections, one element per connection. The SMB
 * lives while an element in it is in use; its file keeps its name only until
 * both partitions map it (then nothing can open and truncate it: issue 11
 * item 6), and its pages are reserved element by element before each is
 * first granted, so a full tmpfs is a refusal here, never a SIGBUS there.
 *
 * The pool only keeps the books and the files' headers; who may ask is the
 * hypervisor's concern, except that an element is only ever granted to the
 * two partitions named in it.
 */
export class SmbPool {
  readonly bytes: number;
  /** The SMB that new elements of a pair come from, by pair. */
  private readonly smbs = new Map<string, SmbFile>();
  /** Every SMB alive, by id: those of `smbs`, and retired ones whose elements are still in use. */
  private readonly byId = new Map<number, SmbFile>();
  private readonly byToken = new Map<number, SmbElement>();
  /** An SMB was removed: its partitions may drop their mappings (the hypervisor tells them, smb-gone). */
  onRemoved: (smb: SmbFile) => void = () => {};

  constructor(
    readonly dir: string,
    readonly geometry: SmbGeometry,
    private readonly nextSmbId: () => number,
    private readonly log: Logger,
  ) {
    checkGeometry(geometry);
    this.bytes = smbBytes(geometry);
  }

  get elementsInUse(): number {
    return this.byToken.size;
  }

  /** Takes a free element of the pair's SMB (creating the file if the pair has none) for `requester`. */
  alloc(requester: string, peer: string): SmbElement {
    const pair: [string, string] = requester < peer ? [requester, peer] : [peer, requester];
    const key = smbFileName(pair[0], pair[1]);
    let smb = this.smbs.get(key);
    let created = false;
    if (!smb) {
      smb = this.create(pair);
      this.smbs.set(key, smb);
      this.byId.set(smb.id, smb);
      created = true;
    }
    const index = smb.slots.findIndex((s) => s === undefined);
    if (index < 0) throw new PoolRefusal(HvErrorCode.NoBuffers, 'full', `the SMB of ${pair[0]} and ${pair[1]} has all ${smb.slots.length} elements in use`);
    try {
      this.reserve(smb, index);
    } catch (err) {
      if (created) this.remove(smb);
      throw err;
    }
    const token = this.newToken();
    // seed 002, Fig. 5: a fresh SMBE has both directions' cursors at zero; the token marks whose it is now.
    smb.view.resetElement(index, token);
    const e: SmbElement = { token, smb, index, allocator: requester, attached: false, released: [false, false] };
    smb.slots[index] = e;
    smb.inUse++;
    this.byToken.set(token, e);
    this.log.info({ token, smbId: smb.id, element: index, allocator: requester, peer, created }, 'SMBE allocated');
    return e;
  }

  /** The peer named in an element takes its side of it. */
  attach(requester: string, token: number): SmbElement {
    const e = this.byToken.get(token);
    if (!e) throw new PoolRefusal(HvErrorCode.Access, 'unknown-token', `token ${token} names no element`);
    const side = this.sideIn(e, requester);
    if (side === undefined) throw new PoolRefusal(HvErrorCode.Access, 'not-party', `${requester} is not a partition of element ${token}`);
    if (requester === e.allocator) throw new PoolRefusal(HvErrorCode.Access, 'own-element', `${requester} allocated element ${token}; only its peer attaches`);
    if (e.released[side]) throw new PoolRefusal(HvErrorCode.Access, 'released', `${requester} released element ${token} already`);
    if (!e.attached) {
      e.attached = true;
      this.log.info({ token, smbId: e.smb.id, element: e.index, lpar: requester }, 'SMBE attached');
    }
    return e;
  }

  element(token: number): SmbElement | undefined {
    return this.byToken.get(token);
  }

  /** `lpar`'s side of element `e` (undefined: not one of its two partitions). */
  sideIn(e: SmbElement, lpar: string): 0 | 1 | undefined {
    if (lpar === e.smb.pair[0]) return 0;
    if (lpar === e.smb.pair[1]) return 1;
    return undefined;
  }

  /** The other partition of element `e`. */
  peerIn(e: SmbElement, lpar: string): string {
    return e.smb.pair[0] === lpar ? e.smb.pair[1] : e.smb.pair[0];
  }

  grant(e: SmbElement, lpar: string): SmbeGrant {
    return { token: e.token, smbId: e.smb.id, path: e.smb.path, bytes: this.bytes, element: e.index, side: this.sideIn(e, lpar)!, peer: this.peerIn(e, lpar), ringBytes: this.geometry.ringBytes };
  }

  /**
   * `requester` lets go of its side. The element is freed once both sides
   * have, or at once when the allocator lets go before its peer attached
   * (the peer never used it; an attach with the token is refused from then on).
   */
  release(requester: string, token: number): 'freed' | 'released' | 'already' {
    const e = this.byToken.get(token);
    if (!e) throw new PoolRefusal(HvErrorCode.Access, 'unknown-token', `token ${token} names no element`);
    const side = this.sideIn(e, requester);
    if (side === undefined) throw new PoolRefusal(HvErrorCode.Access, 'not-party', `${requester} is not a partition of element ${token}`);
    if (e.released[side]) return 'already';
    e.released[side] = true;
    if (e.released[1 - side] || (requester === e.allocator && !e.attached)) {
      this.free(e);
      return 'freed';
    }
    return 'released';
  }

  /**
   * A partition's session ended (process died or stopped). For each element it
   * still held: its side's flags word gets Abort and the peer's CSBA bit is
   * set, so the survivor sees the abort at its next look (seed 002, Fig. 7
   * step 755) and resets the connection; the caller signals the survivor. The
   * element is freed once the survivor releases it, or now if nobody else holds it.
   */
  abandon(lpar: string): Abandoned[] {
    const out: Abandoned[] = [];
    for (const e of [...this.byToken.values()]) {
      const side = this.sideIn(e, lpar);
      if (side === undefined || e.released[side]) continue;
      const peerSide = (1 - side) as 0 | 1;
      e.released[side] = true;
      if (e.released[peerSide] || (lpar === e.allocator && !e.attached)) {
        this.free(e);
        out.push({ element: e, freed: true });
        continue;
      }
      e.smb.view.setFlags(e.index, side, CloseFlag.Abort);
      e.smb.view.markPending(peerSide, e.index);
      out.push({ element: e, freed: false, notify: this.peerIn(e, lpar) });
    }
    // The partition's mappings went with its session, and a file with no name cannot be mapped again: the
    // pair's next element comes from a new SMB, and this one goes once the survivor lets go of its elements.
    for (const smb of [...this.byId.values()]) {
      if (!smb.pair.includes(lpar)) continue;
      smb.mapped[smb.pair[0] === lpar ? 0 : 1] = false;
      smb.abandoned = true;
      if (smb.inUse === 0) this.remove(smb);
      else this.retire(smb);
    }
    return out;
  }

  /**
   * `lpar` maps SMB `smbId` and keeps it mapped until told it is gone. Once
   * both partitions do, the file's name is removed (issue 11 item 6): a
   * shrink of a mapped file is a SIGBUS in every process that touches the lost
   * pages, and a file with no name that no partition holds a descriptor of
   * cannot be opened, let alone truncated, by a partition, its tenant code or
   * anyone else. The mappings keep the pages; the hypervisor reserves later
   * elements through its own (SharedFile keeps no descriptor where
   * MADV_POPULATE_WRITE works). What this cannot stop: a process that opened
   * the file while it still had its name (between creation and the second
   * mapping, or a peer partition's own code) and keeps that descriptor; only
   * file seals (memfd_create with F_SEAL_SHRINK, out of Node's reach without a
   * native addon) would.
   */
  mapped(lpar: string, smbId: number): void {
    const smb = this.byId.get(smbId);
    if (!smb) throw new PoolRefusal(HvErrorCode.Access, 'unknown-smb', `SMB ${smbId} does not exist`);
    const side = lpar === smb.pair[0] ? 0 : lpar === smb.pair[1] ? 1 : undefined;
    if (side === undefined) throw new PoolRefusal(HvErrorCode.Access, 'not-party', `${lpar} is not a partition of SMB ${smbId}`);
    smb.mapped[side] = true;
    if (!smb.linked || !smb.mapped[1 - side]) return;
    fs.rmSync(smb.path, { force: true });
    smb.linked = false;
    this.log.info({ smbId, path: smb.path }, 'SMB unlinked: both partitions map it');
  }

  /** SMB files and elements; with `lpar`, only those it is a partition of. */
  status(lpar?: string): Pick<HvStatus, 'smbs' | 'elements'> {
    const smbs = [...this.byId.values()].filter((s) => lpar === undefined || s.pair.includes(lpar));
    return {
      smbs: smbs.map((s) => ({ smbId: s.id, path: s.path, pair: s.pair, elementsInUse: s.inUse, elements: s.slots.length })),
      elements: smbs.flatMap((s) =>
        s.slots
          .filter((e): e is SmbElement => e !== undefined)
          .map((e) => ({ token: e.token, smbId: s.id, element: e.index, lpars: s.pair, allocator: e.allocator, attached: e.attached, released: e.released })),
      ),
    };
  }

  /** Forgets every SMB (shutdown; the caller removes the directory). */
  clear(): void {
    for (const smb of this.byId.values()) smb.file.close();
    this.byToken.clear();
    this.smbs.clear();
    this.byId.clear();
  }

  private create(pair: [string, string]): SmbFile {
    const id = this.nextSmbId();
    const file = path.join(this.dir, smbInstanceFileName(pair[0], pair[1], id));
    // seed 002, Fig. 3 step 303: the hypervisor sets up the buffer and its header before anyone maps it.
    // Only the header's pages are reserved now, each element's when it is first handed out (issue 11 item 6):
    // the file is sized for every element, but costs memory only for those in use.
    let shared: SharedFile;
    try {
      shared = SharedFile.create(file, this.bytes, SMB_HEADER_BYTES);
    } catch (err) {
      throw this.noRoom(err, `the SMB of ${pair[0]} and ${pair[1]}`);
    }
    const view = SmbView.format(shared.buffer, this.geometry);
    this.log.info({ smbId: id, path: file, pair, bytes: this.bytes }, 'SMB created');
    const n = this.geometry.elements;
    return {
      id,
      path: file,
      pair,
      file: shared,
      view,
      slots: new Array<SmbElement | undefined>(n).fill(undefined),
      reserved: new Array<boolean>(n).fill(false),
      mapped: [false, false],
      linked: true,
      abandoned: false,
      inUse: 0,
    };
  }

  /**
   * Makes element `index`'s pages real before anyone touches them through a
   * mapping: on a full tmpfs the touch would be a SIGBUS in whichever process
   * made it; here it is ENOMEM to the requester, whose connection goes on over
   * TCP (seed 002, Fig. 4 step 405: SMC falls back when the fast path cannot be set up).
   */
  private reserve(smb: SmbFile, index: number): void {
    if (smb.reserved[index]) return;
    try {
      smb.file.reserve(smb.view.elementOffset(index), smb.view.elementBytes);
    } catch (err) {
      throw this.noRoom(err, `element ${index} of SMB ${smb.id}`);
    }
    smb.reserved[index] = true;
  }

  /** A failed reservation as the refusal it is: ENOMEM for a full tmpfs, else the error itself. */
  private noRoom(err: unknown, what: string): Error {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return new PoolRefusal(HvErrorCode.NoMemory, 'no-space', `no room in ${this.dir} for ${what}: ${e.message}`);
    return e;
  }

  private free(e: SmbElement): void {
    const smb = e.smb;
    smb.view.resetElement(e.index, 0);
    smb.slots[e.index] = undefined;
    smb.inUse--;
    this.byToken.delete(e.token);
    this.log.info({ token: e.token, smbId: smb.id, element: e.index }, 'SMBE freed');
    if (smb.inUse > 0) return;
    this.remove(smb);
  }

  /** No connection uses the file: unlink it now. Partitions that still map it keep their pages until they unmap. */
  private remove(smb: SmbFile): void {
    // Every element is free (both sides let go), so no partition touches the file again: its pages go back to
    // the tmpfs now, not once every mapping of it is garbage-collected (issue 11 item 6). Not when a session
    // ended: that partition's process may be alive and a step behind (a fresh page faulted into a hole of a full
    // tmpfs would be the very SIGBUS this avoids), so those pages wait for the mappings to go.
    if (!smb.abandoned) smb.file.discard();
    smb.file.close();
    if (smb.linked) fs.rmSync(smb.path, { force: true });
    smb.linked = false;
    this.retire(smb);
    this.byId.delete(smb.id);
    this.log.info({ smbId: smb.id, path: smb.path }, 'SMB removed');
    this.onRemoved(smb);
  }

  /** No new element comes from `smb`: the pair's next one gets a new SMB. */
  private retire(smb: SmbFile): void {
    const key = smbFileName(smb.pair[0], smb.pair[1]);
    if (this.smbs.get(key) === smb) this.smbs.delete(key);
  }

  private newToken(): number {
    for (;;) {
      const t = crypto.randomBytes(4).readUInt32LE(0);
      if (t !== 0 && !this.byToken.has(t)) return t;
    }
  }
}
