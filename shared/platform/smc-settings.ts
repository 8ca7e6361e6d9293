/**
 * Shared Memory Communications (seed 002) settings: the one definition of
 * them. The platform file's `smc` section is `SmcSettings`; a control node
 * hands each LPAR its share at boot (`SmcGrant`, in the management config
 * message); the partition runs with `PartitionSmc`, the grant plus why SMC
 * is off when it is. A module of its own so that a partition can know the
 * defaults without loading the platform file's parser.
 */

/** What every SMC connection of a partition runs with. */
export interface SmcConnectionSettings {
  /** Bytes of each direction's ring in a buffer element (RMBE/SMBE): a power of two, 4096..16777216. */
  ringBytes: number;
  /** How long a side busy-polls the shared cursors before sleeping and asking the peer for a signal, in µs (0..100000). */
  pollUs: number;
  /** How long the SMC handshake on the TCP connection may take before the connection stays plain TCP, in ms (100..60000). */
  clcTimeoutMs: number;
}

/** The platform file's `smc` section. */
export interface SmcSettings extends SmcConnectionSettings {
  /** Buffer elements (connections) per shared memory buffer (1..1024): the hypervisor's geometry. */
  elementsPerSmb: number;
}

/** A partition's share, as its control node grants it (seed 002, Fig. 4 steps 403/415: "SMC capable and enabled"). */
export interface SmcGrant extends SmcConnectionSettings {
  /** Whether this partition offers and accepts SMC at all. */
  enabled: boolean;
  /** SMC-D capable (shared memory within the CEC; needs the CEC's hypervisor). */
  d: boolean;
  /** SMC-R capable (RDMA over the fabric). */
  r: boolean;
}

/** What a partition's SMC layer runs with: its grant, and its own environment's switch. */
export interface PartitionSmc extends SmcGrant {
  /** Why SMC is off (recorded with each connection it leaves on plain TCP), null when enabled. */
  offReason: string | null;
}

export const DEFAULT_SMC: Readonly<SmcSettings> = Object.freeze({
  ringBytes: 1048576,
  elementsPerSmb: 32,
  pollUs: 1000,
  clcTimeoutMs: 10000,
});

/** Bounds of the settings a partition accepts from its control node (the platform schema enforces the same). */
export const SMC_BOUNDS = Object.freeze({
  ringBytes: [4096, 16777216],
  pollUs: [0, 100000],
  clcTimeoutMs: [100, 60000],
} as const);
