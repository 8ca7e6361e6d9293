/**
 * What an LPAR learns at boot (seed 004, "Network Architecture": as each
 * processor boots it obtains its identity and data link configuration from
 * the control node): its name and CEC, one interface per virtual LAN it is
 * on with the MAC this control node's NVRAM gave it, its workloads and its
 * share of the SMC settings (seed 002).
 */
import type { ControlNodeSpec, Platform, VlanSpec } from '../../../shared/platform/platform.ts';
import type { ConfigSent, MgmtInterface } from '../../../shared/protocol/mgmt.ts';
import { inSubnet, parseCidr, parseIp } from '../../../shared/wire/ipv4-address.ts';
import type { MemberEntry, Membership } from './membership.ts';
import type { Nvram } from './nvram.ts';

export class BootConfig {
  constructor(
    private readonly spec: ControlNodeSpec,
    private readonly platform: Platform,
    private readonly nvram: Nvram,
    private readonly membership: Pick<Membership, 'entry'>,
  ) {}

  /** The config message for `lpar` (an LPAR of this platform). */
  config(lpar: string): ConfigSent {
    const spec = this.platform.lpars.find((l) => l.name === lpar);
    const interfaces: MgmtInterface[] = [];
    for (const v of this.platform.vlans) {
      const m = this.membership.entry(v.name, lpar);
      if (m) interfaces.push(this.interfaceOf(v, m));
    }
    const smc = this.platform.smc;
    return {
      t: 'config',
      name: lpar,
      cec: spec?.cec ?? '',
      controlNode: this.spec.name,
      serial: this.spec.serial,
      platform: this.platform.name,
      ethernet: this.platform.ethernet,
      interfaces,
      // The workloads the platform file names for this LPAR (module paths already absolute).
      apps: spec?.apps ?? [],
      // IPv4 routing for this LPAR: whether it forwards, and its static routes (platform file, checked at load).
      forwarding: spec?.forwarding ?? false,
      routes: spec?.routes ?? [],
      // Seed 002, Fig. 4 steps 403/415: SMC capable and enabled.
      smc: { enabled: spec ? spec.smc.d || spec.smc.r : true, d: spec?.smc.d ?? true, r: spec?.smc.r ?? true, ringBytes: smc.ringBytes, pollUs: smc.pollUs, clcTimeoutMs: smc.clcTimeoutMs },
    };
  }

  interfaceOf(v: VlanSpec, m: MemberEntry): MgmtInterface {
    const ip = parseIp(m.ip);
    const subnet = v.subnets.map(parseCidr).find((s) => inSubnet(ip, s.ip, s.prefix))!;
    return { vlan: v.name, vlanId: v.id, dev: m.dev, ip: m.ip, prefix: subnet.prefix, mac: this.nvram.macFor(m.lpar, v.name), mtu: v.mtu, promiscuousAllowed: v.promiscuous.includes(m.lpar) };
  }
}
