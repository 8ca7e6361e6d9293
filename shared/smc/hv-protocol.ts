/**
 * The session between a partition and its CEC's hypervisor for SMC-D (seed
 * 002, Fig. 3: the hypervisor sets up the shared memory buffers; Fig. 4 step
 * 425: a connection between two partitions of one CEC gets an SMBE; Fig. 6
 * step 608: the signal buffer (SIGB) interrupt). Control messages over a link
 * (shared/control/channel.ts), authenticated with the partition's credential.
 *
 *   partition → hypervisor
 *     smbe-alloc {peer}      request; reply SmbeGrant for the requester's side
 *     smbe-attach {token}    request (the peer named in the element); reply SmbeGrant
 *     smbe-release {token}   notification; the element is freed once both sides let go
 *     signal {token}         notification; forwarded to the other partition of the element
 *     hv-status {}           request; the requester's own SMBs and elements
 *   hypervisor → partition
 *     welcome {cec, ringBytes, elements}   after authentication
 *     refused {reason}                     instead of welcome; the link then closes
 *     signal {token}         a doorbell from the peer, or the hypervisor's own when
 *                            the peer's session ended (its flags word then has Abort)
 *
 * A refused request's error text starts with an errno-style code and a colon
 * ("EACCES: ..."): the control channel carries only the text, and the client
 * turns the prefix back into `err.code`.
 */

export const HvMsg = {
  Alloc: 'smbe-alloc',
  Attach: 'smbe-attach',
  Release: 'smbe-release',
  Signal: 'signal',
  Status: 'hv-status',
} as const;

/** What a partition needs to map and use one element: its side's view of it. */
export interface SmbeGrant {
  /** The hypervisor's token for the element, also stamped in the element's header. */
  token: number;
  /** Unique per SMB file the hypervisor ever created: a new file for the same pair gets a new id. */
  smbId: number;
  path: string;
  /** Bytes to map (the whole SMB file). */
  bytes: number;
  element: number;
  side: 0 | 1;
  peer: string;
  ringBytes: number;
}

export const HvErrorCode = {
  /** Not allowed: a token that is not the requester's, or a partition that is not the element's. */
  Access: 'EACCES',
  /** The pair's SMB has no free element. */
  NoBuffers: 'ENOBUFS',
  /** The peer is not a partition of this platform. */
  NoSuchPeer: 'ENOENT',
  /** The peer is a partition of another CEC: no shared memory with it (seed 002, Fig. 4 step 421). */
  OtherCec: 'EXDEV',
  /** A malformed request, or a partition asking for an element with itself. */
  Invalid: 'EINVAL',
  /** The peer (or, client side, this partition) has no session with the hypervisor. */
  NotConnected: 'ENOTCONN',
  /** No reply in time. */
  TimedOut: 'ETIMEDOUT',
} as const;

export type HvErrorCodeValue = (typeof HvErrorCode)[keyof typeof HvErrorCode];

export class HvError extends Error {
  constructor(
    readonly code: string,
    detail: string,
  ) {
    super(`${code}: ${detail}`);
    this.name = 'HvError';
  }
}

/** Rebuilds an HvError from an error reply's text, or keeps `err` (with no code) when it has none. */
export function hvErrorFrom(err: Error): Error & { code?: string } {
  const m = /^([A-Z][A-Z0-9_]+): ([\s\S]*)$/.exec(err.message);
  return m ? new HvError(m[1], m[2]) : err;
}
