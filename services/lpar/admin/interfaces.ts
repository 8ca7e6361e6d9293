import { ipToString } from '../../../shared/wire/ipv4-address.ts';
import type { LparVerbTable } from '../../../shared/protocol/admin.ts';
import type { StackPort } from './stack.ts';

/** What the listings need of the partition beyond its stack: registrations with the control nodes, and refusals. */
export interface InterfaceFacts {
  /** Virtual LAN registrations, by control node. */
  readonly registered: ReadonlyMap<string, ReadonlySet<string>>;
  /** Why control nodes refused a registration (the last few). */
  readonly refusals: readonly string[];
  /** Malformed management messages received. */
  readonly malformed: number;
}

/**
 * `ip`, `arp`, `ss` and `net-stats`: what ip(8), arp(8) and ss(8) list in a
 * Linux host, read off the partition's stack.
 */
export function interfaceVerbs(stack: StackPort, facts: InterfaceFacts): LparVerbTable<'ip' | 'arp' | 'arp-flush' | 'net-stats' | 'ss'> {
  return {
    ip: () => {
      const s = stack();
      return { interfaces: s.describe(), controlNodes: s.driver.liveControlNodes(), registered: Object.fromEntries([...facts.registered].map(([k, v]) => [k, [...v]])) };
    },
    arp: () => ({ entries: stack().ip.arpTable() }),
    'arp-flush': () => {
      stack().ip.flushArp();
      return {};
    },
    'net-stats': () => {
      const s = stack();
      return { driver: { ...s.driver.stats, controlNodes: s.driver.describeControlNodes() }, ip: s.ip.stats, udp: s.udp.stats, refusals: [...facts.refusals], malformedMgmt: facts.malformed };
    },
    ss: () => {
      const tcp = stack().tcp;
      return {
        connections: tcp.list().map((c) => ({ local: `${ipToString(c.quad.localIp)}:${c.quad.localPort}`, remote: `${ipToString(c.quad.remoteIp)}:${c.quad.remotePort}`, transport: 'tcp', ...c.info })),
        listening: tcp.listening().map((l) => `${ipToString(l.ip)}:${l.port}`),
        // As Linux ss shows a listener: Recv-Q the connections waiting to be accepted, Send-Q the backlog.
        listeners: tcp.listening().map((l) => ({ local: `${ipToString(l.ip)}:${l.port}`, pending: l.pending, backlog: l.backlog, transport: 'tcp' })),
      };
    },
  };
}
