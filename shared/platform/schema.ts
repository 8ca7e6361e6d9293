// JSON Schema (draft-07) for platform files. Only the shape is checked here;
// cross-field rules (unique names, CEC references, timing order) live in
// platform.ts because they need paths that point at the offending field.

import { DEFAULT_VLAN_MTU, MAX_VLAN_MTU, MIN_VLAN_MTU } from './mtu.ts';

const NODE_NAME = '^[a-z][a-z0-9-]{0,30}$';
// Plane names end up inside node names ("plane-<p>") and interface names,
// so they are kept short.
const PLANE_NAME = '^[a-z][a-z0-9]{0,7}$';
const IPV4 = '^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$';
const CIDR = IPV4.slice(0, -1) + '/([0-9]|[12][0-9]|3[0-2])$';
// ws.host goes into every ws:// URL a process listens on or dials: a dotted
// quad or a DNS name (RFC 1123 labels), nothing that could bend the URL (issue 11 item 13).
const HOST = `^(${IPV4.slice(1, -1)}|([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)$`;

/**
 * Sizes the loader refuses beyond (issue 11 item 13). Every LPAR is an OS
 * process with its own network stack (tens of MB each) and a member of every
 * control node's tables: 256 is what the scale bench drives and beyond what
 * one machine boots. A CEC is a hypervisor process; a virtual LAN's number is
 * one byte. The rest bound tables that are walked per packet or per boot.
 */
export const LIMITS = Object.freeze({
  lpars: 256,
  cecs: 64,
  vlans: 255,
  subnetsPerVlan: 16,
  routesPerLpar: 64,
  appsPerLpar: 16,
});

export const platformSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'lparlab platform file',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'planes', 'controlNodes', 'cecs', 'lpars'],
  properties: {
    name: { type: 'string', pattern: NODE_NAME },
    transport: { type: 'string', enum: ['unix', 'ws'], default: 'unix' },
    ws: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string', minLength: 1, maxLength: 253, pattern: HOST, default: '127.0.0.1' },
        basePort: { type: 'integer', minimum: 1024, maximum: 65000, default: 7400 },
      },
    },
    rclan: {
      type: 'object',
      additionalProperties: false,
      properties: {
        heartbeatMs: { type: 'integer', minimum: 10, maximum: 10000, default: 100 },
        deadAfterMs: { type: 'integer', minimum: 20, maximum: 60000, default: 400 },
        undeliverableAfterMs: { type: 'integer', minimum: 50, maximum: 600000, default: 1500 },
        window: { type: 'integer', minimum: 4, maximum: 16384, default: 256 },
      },
    },
    // The virtual Ethernet driver's heartbeat TLVs to the control nodes (seed 004,
    // "Virtual Ethernet Driver"): a control node that leaves a heartbeat
    // unanswered for an interval (longer when its answers are slow) is
    // passed over for ARP, broadcast and relay until it answers again.
    ethernet: {
      type: 'object',
      additionalProperties: false,
      properties: {
        heartbeatMs: { type: 'integer', minimum: 10, maximum: 10000, default: 100 },
        arpCacheSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
      },
    },
    // Shared Memory Communications (seed 002) between partitions: SMC-D
    // within a CEC, SMC-R across CECs. ringBytes must also be a power of two
    // (checked in platform.ts, which can name the field).
    smc: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ringBytes: { type: 'integer', minimum: 4096, maximum: 16777216, default: 1048576 },
        elementsPerSmb: { type: 'integer', minimum: 1, maximum: 1024, default: 32 },
        pollUs: { type: 'integer', minimum: 0, maximum: 100000, default: 200 },
        clcTimeoutMs: { type: 'integer', minimum: 100, maximum: 60000, default: 3000 },
      },
    },
    // Duplicates are rejected semantically so the error can name the second entry.
    planes: {
      type: 'array',
      minItems: 2,
      maxItems: 2,
      items: { type: 'string', pattern: PLANE_NAME },
    },
    controlNodes: {
      type: 'array',
      minItems: 1,
      maxItems: 2,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'serial'],
        properties: {
          name: { type: 'string', pattern: NODE_NAME },
          // Serials are folded into MAC addresses, hence the 16-bit range.
          serial: { type: 'integer', minimum: 1, maximum: 65535 },
        },
      },
    },
    cecs: {
      type: 'array',
      minItems: 1,
      maxItems: LIMITS.cecs,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', pattern: NODE_NAME },
        },
      },
    },
    lpars: {
      type: 'array',
      minItems: 1,
      maxItems: LIMITS.lpars,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'cec'],
        properties: {
          name: { type: 'string', pattern: NODE_NAME },
          cec: { type: 'string', pattern: NODE_NAME },
          // false: this partition neither offers nor accepts SMC (plain TCP);
          // { d: false } or { r: false }: it is capable of the other variant only.
          smc: {
            oneOf: [
              { type: 'boolean' },
              { type: 'object', additionalProperties: false, properties: { d: { type: 'boolean' }, r: { type: 'boolean' } } },
            ],
          },
          // true: the partition routes IPv4 between its virtual LANs (RFC 1812); its
          // peers accept datagrams of other sources from it.
          forwarding: { type: 'boolean' },
          // Static routes: to a prefix (or "default") via a next hop on one of the
          // partition's subnets, and/or out of one of its virtual LANs (dev). That
          // via is on a subnet and dev is a LAN of this LPAR is checked in platform.ts.
          routes: {
            type: 'array',
            maxItems: LIMITS.routesPerLpar,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['prefix'],
              properties: {
                prefix: { type: 'string', pattern: `${CIDR}|^default$` },
                via: { type: 'string', pattern: IPV4 },
                dev: { type: 'string', pattern: NODE_NAME },
              },
            },
          },
          // Workloads the partition starts once its network is up: a built-in
          // (name) or a user ES module (module, relative to the platform file).
          // "Exactly one of name and module" and "a built-in needs a port" are
          // checked in platform.ts, which can name the field.
          apps: {
            type: 'array',
            maxItems: LIMITS.appsPerLpar,
            items: {
              type: 'object',
              additionalProperties: false,
              properties: {
                name: { type: 'string', enum: ['echo', 'discard', 'http', 'bulk-sink', 'count-sink'] },
                module: { type: 'string', minLength: 1 },
                port: { type: 'integer', minimum: 1, maximum: 65535 },
                options: { type: 'object' },
              },
            },
          },
        },
      },
    },
    // Virtual LANs (seed 004, "Virtual LAN Server" 1: one broadcast domain
    // each, any number of IP subnets on it, membership set by the administrator).
    vlans: {
      type: 'array',
      maxItems: LIMITS.vlans,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'subnets', 'members'],
        properties: {
          name: { type: 'string', pattern: NODE_NAME },
          // Carried in internal MAC addresses and TLV headers: one byte.
          id: { type: 'integer', minimum: 1, maximum: 255 },
          subnets: { type: 'array', minItems: 1, maxItems: LIMITS.subnetsPerVlan, items: { type: 'string', pattern: CIDR } },
          mtu: { type: 'integer', minimum: MIN_VLAN_MTU, maximum: MAX_VLAN_MTU, default: DEFAULT_VLAN_MTU },
          members: {
            type: 'array',
            maxItems: LIMITS.lpars,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['lpar', 'ip'],
              properties: {
                lpar: { type: 'string', pattern: NODE_NAME },
                ip: { type: 'string', pattern: IPV4 },
              },
            },
          },
          // Members the administrator allows to listen promiscuously.
          promiscuous: { type: 'array', items: { type: 'string', pattern: NODE_NAME } },
        },
      },
    },
  },
};
