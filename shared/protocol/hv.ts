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
 *     smb-mapped {smbId}     notification; this partition maps the SMB (and keeps it
 *                            mapped until smb-gone): once both have, its file is unlinked
 *     signal {token}         notification; forwarded to the other partition of the element
 *     hv-status {}           request; the requester's own SMBs and elements
 *   hypervisor → partition
 *     welcome {cec, ringBytes, elements}   after authentication
 *     refused {reason}                     instead of welcome; the link then closes
 *     signal {token}         a doorbell from the peer, or the hypervisor's own when
 *                            the peer's session ended (its flags word then has Abort)
 *     smb-gone {smbId}       the SMB is removed: no element of it will be granted again
 *
 * A refused request's error text starts with an errno-style code and a colon
 * ("EACCES: ..."): the control channel carries only the text, and the client
 * turns the prefix back into `err.code`.
 *
 * Each message has its checked decoder (shared/protocol/check.ts): the
 * hypervisor decodes what a partition sends with `decodeHvRequest`, the
 * partition decodes what comes back with `decodeSmbeGrant`, `decodeHvWelcome`
 * and `decodeHvSignal`. A malformed request is refused EINVAL naming the
 * field; a malformed message from the hypervisor is EPROTO at the client.
 */

import { type Check, type Decoded, type MessagesOf, MessageSet, arrayOf, bool, decodeWith, either, int, literal, name, opt, recordOf, shape, str } from './check.ts';

export const HvMsg = {
  Alloc: 'smbe-alloc',
  Attach: 'smbe-attach',
  Release: 'smbe-release',
  Signal: 'signal',
  Status: 'hv-status',
  Mapped: 'smb-mapped',
  Gone: 'smb-gone',
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
  /** The pool's tmpfs has no room for the element's pages (issue 11 item 6: refused, never a SIGBUS later). */
  NoMemory: 'ENOMEM',
  /** A malformed request, or a partition asking for an element with itself. */
  Invalid: 'EINVAL',
  /** The peer (or, client side, this partition) has no session with the hypervisor. */
  NotConnected: 'ENOTCONN',
  /** No reply in time. */
  TimedOut: 'ETIMEDOUT',
  /** A malformed message from the hypervisor (client side). */
  Protocol: 'EPROTO',
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

/** A token is one 32-bit word (0 names no element: the pool refuses it as any unknown token, EACCES). */
const token = int(0, 0xffffffff);

/** What a partition sends its hypervisor, by `t`. */
export const hvRequests = new MessageSet('hypervisor request', {
  [HvMsg.Alloc]: { peer: name(256) },
  [HvMsg.Attach]: { token },
  [HvMsg.Release]: { token },
  [HvMsg.Signal]: { token },
  [HvMsg.Status]: {},
  [HvMsg.Mapped]: { smbId: int(0) },
});

type HvRequests = MessagesOf<typeof hvRequests>;
export type HvRequest = HvRequests[keyof HvRequests];
export type HvRequestOf<T extends HvRequest['t']> = HvRequests[T];

/** Any request of a partition; `hvRequests.decodeOf(t, raw)` for one whose `t` is known. */
export function decodeHvRequest(raw: unknown): Decoded<HvRequest> {
  return hvRequests.decode(raw);
}

/**
 * The doorbell, both ways (the hot message of SMC-D: one per wake-up of a
 * sleeping peer): checked without building a decoder's intermediate objects.
 */
export function decodeHvSignal(raw: unknown): Decoded<HvRequestOf<'signal'>> {
  const v = typeof raw === 'object' && raw !== null ? (raw as { token?: unknown }).token : undefined;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return { ok: true, value: { t: HvMsg.Signal, token: v } };
  return { ok: false, reason: `signal: field "token": an integer in 0..4294967295 (got ${typeof v === 'number' ? v : typeof v})` };
}

const smbeGrant: Check<SmbeGrant> = shape({
  token,
  smbId: int(0),
  path: name(4096),
  bytes: int(1),
  element: int(0),
  side: either(literal(0), literal(1), '0 or 1'),
  peer: name(256),
  ringBytes: int(1),
});

/** The reply to smbe-alloc and smbe-attach. */
export function decodeSmbeGrant(raw: unknown): Decoded<SmbeGrant> {
  return decodeWith(smbeGrant, 'SMBE grant', raw);
}

const hvSmbGone = shape({ smbId: int(0) });

/** smb-gone, from the hypervisor: the SMB whose mapping this partition may now drop. */
export function decodeHvSmbGone(raw: unknown): Decoded<ReturnType<typeof hvSmbGone>> {
  return decodeWith(hvSmbGone, 'smb-gone', raw);
}

const hvWelcome = shape({ cec: name(256), ringBytes: int(1), elements: int(1) });
export type HvWelcome = ReturnType<typeof hvWelcome>;

/** After authentication: the CEC and the geometry of its SMBs. */
export function decodeHvWelcome(raw: unknown): Decoded<HvWelcome> {
  return decodeWith(hvWelcome, 'welcome', raw);
}

/** One SMB of the pool, and one element in use, as hv-status lists them. */
const hvSmb = shape({ smbId: int(0), path: str, pair: arrayOf(str, 2), elementsInUse: int(0), elements: int(0) });
const hvElement = shape({ token, smbId: int(0), element: int(0), lpars: arrayOf(str, 2), allocator: str, attached: bool, released: arrayOf(bool, 2) });

/** hv-status: the pool (all of it for the admin verb, with the directory and sessions; a partition's own part over its session). */
export const hvStatusCheck = shape({
  cec: name(256),
  dir: opt(str),
  sessions: opt(arrayOf(str)),
  geometry: shape({ elements: int(1), ringBytes: int(1) }),
  smbBytes: int(0),
  smbs: arrayOf(hvSmb),
  elements: arrayOf(hvElement),
  stats: recordOf(int(0)),
});

/** The reply to hv-status (a partition's own view; the admin verb adds the pool directory and sessions). */
export type HvStatus = ReturnType<typeof hvStatusCheck>;

export function decodeHvStatus(raw: unknown): Decoded<HvStatus> {
  return decodeWith(hvStatusCheck, 'hv-status reply', raw);
}
