/**
 * What the two SMC data paths (SMC-D over a shared memory buffer element,
 * SMC-R over RDMA WRITE into a remote memory buffer element) offer the socket
 * above them, and what they call on it. The socket keeps node:net's shape
 * whichever path it runs on (seed 003: "no changes or modifications to
 * applications are required").
 */

export type SmcMode = 'SMC-D' | 'SMC-R';

/** The socket side of a data path. */
export interface SmcSocketSide {
  /** Data for the app, in order; false when the app's buffer is full (wait for `resume`). */
  deliver(data: Buffer): boolean;
  /** The peer will write no more. */
  eof(): void;
  /** The peer aborted or died: the socket resets (ECONNRESET). */
  reset(reason: string): void;
  /** Both directions are done and the path has released its buffers. */
  finished(): void;
}

export interface SmcPath {
  readonly mode: SmcMode;
  /** Copies `chunk` into the peer's buffer; `cb` once all of it is in (a full ring holds it back: backpressure). */
  write(chunk: Buffer, cb: (err?: Error) => void): void;
  /** The app ended its writable side. */
  end(): void;
  /** The app wants more data. */
  resume(): void;
  /** The socket is destroyed: abort (data unread or an error) or close. Releases the buffers. */
  close(abort: boolean): void;
  /** What `lparlab ss` shows: cursors, flags, buffer. */
  info(): Record<string, unknown>;
}

/** Per-LPAR SMC counters (smc-tools' smcss/smcd stats, in spirit). */
export interface SmcStats {
  connections: { tcp: number; smcd: number; smcr: number };
  /** Connections that ran plain TCP although SMC was tried or offered, by reason. */
  fallbacks: Record<string, number>;
  bytes: { smcdOut: number; smcdIn: number; smcrOut: number; smcrIn: number };
  /** A writer found the peer's ring full. */
  ringFull: number;
  signalsSent: number;
  signalsReceived: number;
  linkFailovers: number;
  /** SMC-R connections that lost every link and went on over TCP. */
  tcpFailbacks: number;
  resets: number;
  malformedClc: number;
  malformedCdc: number;
  /** CDCs for a connection already closed here. */
  staleCdc: number;
}

export function newSmcStats(): SmcStats {
  return {
    connections: { tcp: 0, smcd: 0, smcr: 0 },
    fallbacks: {},
    bytes: { smcdOut: 0, smcdIn: 0, smcrOut: 0, smcrIn: 0 },
    ringFull: 0,
    signalsSent: 0,
    signalsReceived: 0,
    linkFailovers: 0,
    tcpFailbacks: 0,
    resets: 0,
    malformedClc: 0,
    malformedCdc: 0,
    staleCdc: 0,
  };
}
