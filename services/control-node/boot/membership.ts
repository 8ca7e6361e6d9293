/**
 * Who is on which virtual LAN, with which address and device (seed 004,
 * "Virtual LAN Server" 1: the server knows its members): the platform file
 * first, then join and leave at run time. It survives a restart of this
 * control node within a run (kept with the run's state), not a new boot.
 */
import { arrayOf, int, ipv4, name, recordOf, shape } from '../../../shared/protocol/check.ts';
import { readStateFile, writeStateFile } from '../../../shared/runtime/state-file.ts';
import { lanOverlapProblem, lparInterfaces, memberAddressProblem, type Platform, type VlanSpec } from '../../../shared/platform/platform.ts';

export interface MemberEntry {
  lpar: string;
  ip: string;
  /** The LPAR's device number for its interface on this virtual LAN. */
  dev: number;
}

type Table = Record<string, MemberEntry[]>;

/** The table as read back: a corrupt one stops the control node naming the file (issue 11 item 8). */
const table = recordOf(arrayOf(shape({ lpar: name(), ip: ipv4, dev: int(1, 0xffff) })));

/** The key of the unicast RVI of virtual LAN `vlan` between two members, whichever way round they are named. */
export function pairKey(vlan: string, a: string, b: string): string {
  return a < b ? `${vlan}|${a}|${b}` : `${vlan}|${b}|${a}`;
}

export class Membership {
  private readonly table: Table;

  constructor(
    private readonly platform: Platform,
    private readonly file: string,
  ) {
    this.table = this.load();
  }

  private load(): Table {
    // The control node's own state file, written by save() below; none yet: the platform file's members.
    const stored = readStateFile(this.file, table);
    if (stored) return stored;
    const m: Table = {};
    for (const v of this.platform.vlans) m[v.name] = [];
    for (const l of this.platform.lpars) for (const i of lparInterfaces(this.platform, l.name)) m[i.vlan.name].push({ lpar: l.name, ip: i.ip, dev: i.dev });
    return m;
  }

  private save(): void {
    writeStateFile(this.file, this.table);
  }

  /** Every virtual LAN with its members. */
  entries(): Array<[string, readonly MemberEntry[]]> {
    return Object.entries(this.table);
  }

  members(vlan: string): readonly MemberEntry[] {
    return this.table[vlan] ?? [];
  }

  entry(vlan: string, lpar: string): MemberEntry | undefined {
    return this.members(vlan).find((m) => m.lpar === lpar);
  }

  /** Whether two LPARs share a virtual LAN: the one condition for paths between them. */
  sharesLan(a: string, b: string): boolean {
    return Object.values(this.table).some((ms) => ms.some((m) => m.lpar === a) && ms.some((m) => m.lpar === b));
  }

  /**
   * The entry `lpar` would have on `vlan` with address `ipText` (its next
   * free device number), or throws naming what is wrong: the address outside
   * the LAN's subnets, a member already, an address in use. Changes nothing:
   * `add` it once its paths exist.
   */
  admit(vlan: VlanSpec, lpar: string, ipText: string): MemberEntry {
    // The loader's own rules (issue 11 item 13): a host address of one of the LAN's subnets, not .0 or .255 of a /24,
    // loopback or multicast; and no LAN of the LPAR's whose subnets overlap this one's.
    const problem = memberAddressProblem(vlan, ipText);
    if (problem) throw new Error(problem);
    const others = this.platform.vlans.filter((v) => v.name !== vlan.name && this.members(v.name).some((m) => m.lpar === lpar));
    const overlap = lanOverlapProblem(others, vlan, lpar);
    if (overlap) throw new Error(overlap);
    const members = this.members(vlan.name);
    if (members.some((m) => m.lpar === lpar)) throw new Error(`${lpar} is already a member of ${vlan.name}`);
    if (members.some((m) => m.ip === ipText)) throw new Error(`${ipText} is already used on ${vlan.name}`);
    const dev = Math.max(0, ...Object.values(this.table).flatMap((ms) => ms.filter((m) => m.lpar === lpar).map((m) => m.dev))) + 1;
    return { lpar, ip: ipText, dev };
  }

  /** Adds an admitted entry; persisted before it returns. */
  add(vlan: string, entry: MemberEntry): void {
    (this.table[vlan] ??= []).push(entry);
    this.save();
  }

  /** Removes `lpar` from `vlan`; returns the members that remain. Persisted before it returns. */
  leave(vlan: string, lpar: string): readonly MemberEntry[] {
    const members = this.table[vlan];
    if (!members) throw new Error(`no virtual LAN "${vlan}"`);
    const i = members.findIndex((m) => m.lpar === lpar);
    if (i < 0) throw new Error(`${lpar} is not a member of ${vlan}`);
    members.splice(i, 1);
    this.save();
    return members;
  }
}
