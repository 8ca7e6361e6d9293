/**
 * Shared Memory Communications (seed 002) settings of a platform: the
 * platform file's `smc` section. A module of its own so that a partition can
 * know the defaults without loading the platform file's parser.
 */
export interface SmcSettings {
  /** Bytes of each direction's ring in a buffer element (RMBE/SMBE): a power of two, 4096..16777216. */
  ringBytes: number;
  /** Buffer elements (connections) per shared memory buffer (1..1024). */
  elementsPerSmb: number;
  /** How long a side busy-polls the shared cursors before sleeping and asking the peer for a signal, in µs (0..100000). */
  pollUs: number;
  /** How long the SMC handshake on the TCP connection may take before the connection stays plain TCP, in ms. */
  clcTimeoutMs: number;
}

export const DEFAULT_SMC: Readonly<SmcSettings> = Object.freeze({
  ringBytes: 1048576,
  elementsPerSmb: 32,
  pollUs: 1000,
  clcTimeoutMs: 10000,
});
