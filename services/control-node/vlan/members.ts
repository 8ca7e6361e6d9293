/**
 * A virtual LAN's members as the LAN's server keeps them, and the narrow
 * ports its parts see: the ARP server and the uplink (VLAN proxy) need the
 * registered members and a way to send, never the whole server; the server
 * needs of its uplink only a way out of the platform, and of its control
 * node only the RVIs (VlanFabric: the RVI mesh is one).
 */
import type { ToLpar } from '../../../shared/protocol/mgmt.ts';

/** What the virtual LAN server needs of its control node. */
export interface VlanFabric {
  /** Sends a TLV frame to an LPAR over this control node's virtual-LAN RVI to it. */
  sendFrame(lpar: string, frame: Buffer): boolean;
  sendMgmt(lpar: string, msg: ToLpar): void;
  /** Id of the unicast RVI of this virtual LAN between two members, if this control node knows it. */
  lanRvi(vlan: string, a: string, b: string): number | undefined;
  /** The unicast RVI between two members, made through the fabric manager if it is not known yet (rvi-mesh.ts). */
  ensureLan(vlan: string, a: string, b: string): Promise<number>;
  /** The members `lpar` has a known unicast RVI to, with its id. */
  lanPeersOf(vlan: string, lpar: string): ReadonlyMap<string, number>;
  /** The member at the other end of `lpar`'s unicast RVI `rvi`. */
  lanPeer(vlan: string, lpar: string, rvi: number): string | undefined;
}

/**
 * A member's state (seed 004, "Virtual LAN Server" 1 and the promiscuous
 * passages). Configured: in the membership, not (or no longer) registered;
 * nothing is sent to it. Registered: its IP and MAC are bound to it, it is
 * served. Promiscuous: registered and cloned every unicast frame of the LAN
 * (only where the platform file permits it).
 */
export const MemberState = { Configured: 'configured', Registered: 'registered', Promiscuous: 'promiscuous' } as const;
export type MemberState = (typeof MemberState)[keyof typeof MemberState];

/** register: its registration was accepted; forget: its process went away or restarts; promisc: it asked for mode on or off (already permitted). */
export type MemberEvent = { type: 'register' } | { type: 'forget' } | { type: 'promisc'; on: boolean };

/** The member state machine: one transition per event. Promiscuous mode needs a registration; a new registration keeps the mode. */
export function memberTransition(state: MemberState, e: MemberEvent): MemberState {
  switch (e.type) {
    case 'register':
      return state === MemberState.Configured ? MemberState.Registered : state;
    case 'forget':
      return MemberState.Configured;
    case 'promisc':
      if (state === MemberState.Configured) return state;
      return e.on ? MemberState.Promiscuous : MemberState.Registered;
  }
}

export interface VlanMember {
  lpar: string;
  dev: number;
  ip: number;
  /** The MAC the member registered (it uses the first one a control node gave it). */
  mac?: Buffer;
  state: MemberState;
  /** Multicast group MACs joined. The member counts its own sockets' joins and says only first join and last leave. */
  groups: Set<string>;
}

export function isRegistered(m: VlanMember): boolean {
  return m.state !== MemberState.Configured;
}

export function isPromiscuous(m: VlanMember): boolean {
  return m.state === MemberState.Promiscuous;
}

/** What the ARP server and the uplink see of their virtual LAN. */
export interface VlanMembers {
  readonly name: string;
  /** Virtual LAN number, carried in internal MACs and TLV headers. */
  readonly id: number;
  /** The registered members (a live view, kept up to date, not a copy). */
  readonly registered: ReadonlySet<VlanMember>;
  /** Look-ups by the registered address, MAC and name: maps, not scans (issue 10 item 5). */
  memberByIp(ip: number): VlanMember | undefined;
  memberByMac(mac: Buffer): VlanMember | undefined;
  registeredMember(lpar: string): VlanMember | undefined;
  /** Id of the unicast RVI of this virtual LAN between two members, if this control node knows it. */
  lanRvi(a: string, b: string): number | undefined;
  /** The unicast RVI between two members, made now if needed. */
  ensureLan(a: string, b: string): Promise<number>;
  /** The members `lpar` has a known unicast RVI to, with its id. */
  lanPeersOf(lpar: string): ReadonlyMap<string, number>;
  /** Sends a TLV frame to a member over its control node's virtual-LAN RVI; false: its RVI was full, the frame is dropped. */
  send(to: VlanMember, frame: Buffer): boolean;
  /** The link out of the platform, when one is attached. */
  readonly uplink: Uplink | undefined;
}

/** The way out of the platform (seed 004, "5. Bridging and Routing to other Domains"): one Ethernet frame at a time. */
export interface Uplink {
  send(frame: Buffer): void;
  close(): void;
}
