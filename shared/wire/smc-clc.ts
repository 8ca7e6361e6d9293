/**
 * SMC negotiation on the wire: the TCP option that offers SMC and the CLC
 * (connection layer control) messages that set it up (seed 002, Fig. 4).
 *
 * A client that is SMC capable and enabled (step 403) puts a TCP experimental
 * option (kind 254, RFC 6994) with the 32-bit magic 0xE2D4C3D9 in its SYN, as
 * Linux's net/smc does; a server that is too (step 415) echoes it in the
 * SYN-ACK. Only then does a CLC exchange run as the first bytes of the new
 * TCP connection: proposal (client to server), accept or decline (server to
 * client), confirm or decline (client to server). The proposal carries what
 * steps 417-421 decide on: the paths the client can use and the CEC it is on,
 * so the server can pick SMC-D (same CEC, step 425) or SMC-R (step 407).
 *
 * The header and trailer follow Linux (net/smc/smc_clc.h, RFC 7609); the
 * bodies are our own, carrying what the emulation needs:
 *
 *   header (8 bytes)
 *     0 u32 eyecatcher 0xE2D4C3D9 ("SMCR" in EBCDIC)
 *     4 u8  type       ClcType
 *     5 u16 length     of the whole message, header through trailer
 *     7 u8  version:4 (1) | reserved:2 (0) | path flags:2 (SmcPath bits):
 *           the paths offered in a proposal (at least one), the one chosen in
 *           an accept or confirm (exactly one), none in a decline or sync
 *   body, by type (strings are a u8 byte count then UTF-8, at most 64 bytes)
 *     Proposal      str lpar, str cec, u32 ringBytes
 *     Accept        str lpar, u32 token, u32 ringBytes,
 *     Confirm         u8 link count, count x (u32 region, u32 key)
 *     Decline       u32 reason (DeclineReason), str diagnosis (empty = none)
 *     FallbackSync  u64 bytes received
 *     Closed        u64 bytes sent
 *   trailer (4 bytes): the eyecatcher again
 *
 * All numbers are big-endian.
 */
import type { TcpOptions } from './tcp.ts';
import { WireError } from './wire-error.ts';

/** The ExID magic of the SMC TCP option, and the CLC eyecatcher: "SMCR" in EBCDIC. */
export const SMC_OPTION_MAGIC = 0xe2d4c3d9;
export const CLC_HEADER = 8;
export const CLC_TRAILER = 4;
/** No CLC message is longer; a length field above it is garbage, not a big message. */
export const CLC_MAX_LENGTH = 1024;
export const CLC_VERSION = 1;
/** Longest string a CLC message carries, in UTF-8 bytes. */
export const CLC_MAX_STRING = 64;
/** The bounds of an SMB / RMB ring (shared/smc/smb.ts): a ring size offered or granted lies between them. */
export const CLC_MIN_RING_BYTES = 4096;
export const CLC_MAX_RING_BYTES = 16 * 1024 * 1024;

export const ClcType = {
  Proposal: 1,
  Accept: 2,
  Confirm: 3,
  Decline: 4,
  /**
   * An lparlab extension, not in Linux. When SMC-R has lost every link and
   * no other exists (seed 002, Fig. 10 step 1018: "sync and attempt to fail
   * back to TCP/IP"), each side sends one on the TCP connection saying how
   * many bytes of the peer's stream it has received over SMC; each then
   * resends from that point over TCP and both carry on there (step 1020).
   */
  FallbackSync: 0x20,
  /**
   * An lparlab extension too: the last word of a side whose SMC-R connection
   * closed cleanly (seed 002, Fig. 10 steps 1003-1007), written on the TCP
   * connection just before its FIN: how many bytes it sent. Its close CDC
   * goes over a link; should that link be lost with it, the peer falls back
   * (step 1018) to a TCP connection the closer has already ended, and can
   * tell only from this whether it has every byte (then the stream ends
   * cleanly) or lost some (then it resets).
   */
  Closed: 0x21,
} as const;
export type ClcType = (typeof ClcType)[keyof typeof ClcType];

/** Path flags of the header's low bits. */
export const SmcPath = {
  /** SMC-R: RDMA between CECs (seed 002, Fig. 4 step 407). */
  R: 1,
  /** SMC-D: shared memory within a CEC (Fig. 4 step 425). */
  D: 2,
} as const;
export type SmcPath = (typeof SmcPath)[keyof typeof SmcPath];

/**
 * Why a peer refused SMC. Codes with a Linux counterpart use Linux's value
 * (net/smc/smc_clc.h, SMC_CLC_DECL_*), so a trace reads the same as one of
 * Linux; the top byte is the class (1 resources, 2 timeout, 3 configuration,
 * 4 synchronization, 5 peer, 9 internal). Class 0x7f is lparlab's own, for
 * cases Linux has no code for.
 */
export const DeclineReason = {
  /** SMC_CLC_DECL_MEM. */
  NoMemory: 0x01010000,
  /**
   * SMC_CLC_DECL_TIMEOUT of Linux's first SMC release (4.11), which used it
   * for any timeout; later kernels replaced it with the two below.
   */
  ClcTimeout: 0x02000000,
  /** SMC_CLC_DECL_TIMEOUT_CL: no confirm on the new SMC-R link in time. */
  TimeoutConfirmLink: 0x02010000,
  /** SMC_CLC_DECL_TIMEOUT_AL: no answer to adding an SMC-R link in time. */
  TimeoutAddLink: 0x02020000,
  /** SMC_CLC_DECL_PEERNOSMC: the SYN-ACK did not echo the SMC option. */
  PeerNoSmc: 0x03010000,
  /** SMC_CLC_DECL_NOSMCDEV: neither an SMC-D nor an SMC-R path to the peer. */
  NoSmcDevice: 0x03030000,
  /** SMC_CLC_DECL_NOSMCDDEV: in lparlab, the peer is not on the same CEC. */
  NoSmcDDevice: 0x03030001,
  /** SMC_CLC_DECL_NOSMCRDEV: no RDMA link to the peer's CEC. */
  NoSmcRDevice: 0x03030002,
  /** SMC_CLC_DECL_MODEUNSUPP: the path chosen was not one offered. */
  ModeUnsupported: 0x03040000,
  /** SMC_CLC_DECL_NOACTLINK: the link group has no usable SMC-R link. */
  NoActiveLink: 0x030a0000,
  /** SMC_CLC_DECL_VERSMISMAT. */
  VersionMismatch: 0x030c0000,
  /** SMC_CLC_DECL_SYNCERR: the two sides disagree on the connection's state. */
  SyncError: 0x04000000,
  /** SMC_CLC_DECL_PEERDECL: we stop because the peer declined. */
  PeerDeclined: 0x05000000,
  /** SMC_CLC_DECL_INTERR (0x99990000 in Linux before 4.19). */
  InternalError: 0x09990000,
  /** lparlab: SMC is switched off on this partition (Fig. 4 steps 403 and 415 answered no). */
  SmcDisabled: 0x7f010000,
  /** lparlab: a CLC message failed to parse; Linux just drops the connection. */
  MalformedClc: 0x7f020000,
} as const;
export type DeclineReason = (typeof DeclineReason)[keyof typeof DeclineReason];

const DECLINE_TEXT: ReadonlyMap<number, string> = new Map([
  [DeclineReason.NoMemory, 'no buffer memory'],
  [DeclineReason.ClcTimeout, 'CLC timeout'],
  [DeclineReason.TimeoutConfirmLink, 'timeout confirming the SMC-R link'],
  [DeclineReason.TimeoutAddLink, 'timeout adding an SMC-R link'],
  [DeclineReason.PeerNoSmc, 'peer has no SMC'],
  [DeclineReason.NoSmcDevice, 'no SMC device'],
  [DeclineReason.NoSmcDDevice, 'no SMC-D device: peer not on the same CEC'],
  [DeclineReason.NoSmcRDevice, 'no SMC-R link to the peer'],
  [DeclineReason.ModeUnsupported, 'SMC mode unsupported'],
  [DeclineReason.NoActiveLink, 'no active SMC-R link'],
  [DeclineReason.VersionMismatch, 'SMC version mismatch'],
  [DeclineReason.SyncError, 'synchronization error'],
  [DeclineReason.PeerDeclined, 'peer declined'],
  [DeclineReason.InternalError, 'internal error'],
  [DeclineReason.SmcDisabled, 'smc disabled'],
  [DeclineReason.MalformedClc, 'malformed CLC message'],
]);

const DECLINE_CLASS: ReadonlyMap<number, string> = new Map([
  [0x01, 'insufficient resources'],
  [0x02, 'timeout'],
  [0x03, 'configuration error'],
  [0x04, 'synchronization error'],
  [0x05, 'peer declined'],
  [0x09, 'internal error'],
  [0x7f, 'lparlab decline'],
]);

/**
 * A line for logs and error messages. A code we do not know (a newer peer's)
 * is named by its class, so it still reads as something.
 */
export function declineText(code: number): string {
  const text = DECLINE_TEXT.get(code);
  if (text !== undefined) return text;
  const hex = `0x${(code >>> 0).toString(16).padStart(8, '0')}`;
  const cls = DECLINE_CLASS.get(code >>> 24);
  return cls === undefined ? `unknown decline reason ${hex}` : `${cls} (${hex})`;
}

/**
 * The kind-254 option a SYN carries to offer SMC, for TcpOptions.experimental:
 * just the magic, as Linux sends it (option length 6). A fresh buffer each
 * call, since a segment's options may be written into.
 */
export function smcSynOption(): { exid: number; data: Buffer } {
  const data = Buffer.alloc(4);
  data.writeUInt32BE(SMC_OPTION_MAGIC, 0);
  return { exid: SMC_OPTION_MAGIC >>> 16, data };
}

/** Whether a SYN or SYN-ACK offers SMC: exactly the magic, as Linux recognizes it (no extra bytes). */
export function hasSmcOption(o: TcpOptions): boolean {
  return o.experimental?.some((e) => e.data.length === 4 && e.data.readUInt32BE(0) === SMC_OPTION_MAGIC) ?? false;
}

export interface ClcProposal {
  type: typeof ClcType.Proposal;
  /** SmcPath bits the client can use; at least one. */
  paths: number;
  /** The client's partition name. */
  lpar: string;
  /** The client's CEC: the server picks SMC-D only when it matches its own (Fig. 4 step 421). */
  cec: string;
  /** The ring size the client wants: a power of two in CLC_MIN_RING_BYTES..CLC_MAX_RING_BYTES. */
  ringBytes: number;
}

/** One RDMA memory region the sender exposes, per link plane (a, b). */
export interface ClcLink {
  region: number;
  key: number;
}

interface ClcAcceptConfirmBody {
  /** Exactly one path: the server's choice, repeated by the client. */
  path: SmcPath;
  /** The sender's partition name. */
  lpar: string;
  /** SMC-D: the SMB element token; SMC-R: the sender's connection alert token. */
  token: number;
  /** The ring size granted: a power of two in CLC_MIN_RING_BYTES..CLC_MAX_RING_BYTES. */
  ringBytes: number;
  /** None for SMC-D; for SMC-R exactly two, link plane a then b. */
  links: ClcLink[];
}

export interface ClcAccept extends ClcAcceptConfirmBody {
  type: typeof ClcType.Accept;
}

export interface ClcConfirm extends ClcAcceptConfirmBody {
  type: typeof ClcType.Confirm;
}

export interface ClcDecline {
  type: typeof ClcType.Decline;
  /** A DeclineReason code; a peer may send codes this build does not know. */
  reason: number;
  /** Free text for the peer's logs. An empty string is sent as none and parses as undefined. */
  diagnosis?: string;
}

export interface ClcFallbackSync {
  type: typeof ClcType.FallbackSync;
  /** Bytes of the peer's stream received so far. */
  received: number;
}

export interface ClcClosed {
  type: typeof ClcType.Closed;
  /** Bytes of this side's stream it sent over SMC, in all. */
  sent: number;
}

export type ClcMessage = ClcProposal | ClcAccept | ClcConfirm | ClcDecline | ClcFallbackSync | ClcClosed;

const TYPE_NAME: ReadonlyMap<number, string> = new Map([
  [ClcType.Proposal, 'proposal'],
  [ClcType.Accept, 'accept'],
  [ClcType.Confirm, 'confirm'],
  [ClcType.Decline, 'decline'],
  [ClcType.FallbackSync, 'fallback sync'],
  [ClcType.Closed, 'closed'],
]);

const PATH_BITS = SmcPath.R | SmcPath.D;
const RESERVED_BITS = 0x0f & ~PATH_BITS;
/** A string's smallest and largest encoding: its count byte plus 0 or 64 bytes. */
const STR_MIN = 1;
const STR_MAX = 1 + CLC_MAX_STRING;
/** A node name is at least one character. */
const NAME_MIN = STR_MIN + 1;
const OVERHEAD = CLC_HEADER + CLC_TRAILER;
/** An accept or confirm after its lpar: token, ringBytes, link count; then the links. */
const AC_FIXED = 4 + 4 + 1;
const LINK_BYTES = 8;
const R_LINKS = 2;

/** Each type's length bounds, so a reader can reject a length as soon as it arrives. */
const LENGTH_BOUNDS: ReadonlyMap<number, { min: number; max: number }> = new Map([
  [ClcType.Proposal, { min: OVERHEAD + 2 * NAME_MIN + 4, max: OVERHEAD + 2 * STR_MAX + 4 }],
  [ClcType.Accept, { min: OVERHEAD + NAME_MIN + AC_FIXED, max: OVERHEAD + STR_MAX + AC_FIXED + R_LINKS * LINK_BYTES }],
  [ClcType.Confirm, { min: OVERHEAD + NAME_MIN + AC_FIXED, max: OVERHEAD + STR_MAX + AC_FIXED + R_LINKS * LINK_BYTES }],
  [ClcType.Decline, { min: OVERHEAD + 4 + STR_MIN, max: OVERHEAD + 4 + STR_MAX }],
  [ClcType.FallbackSync, { min: OVERHEAD + 8, max: OVERHEAD + 8 }],
  [ClcType.Closed, { min: OVERHEAD + 8, max: OVERHEAD + 8 }],
]);

/** The shortest message of any type: fewer bytes than this can never be one. */
export const CLC_MIN_LENGTH = Math.min(...[...LENGTH_BOUNDS.values()].map((b) => b.min));

const NODE_NAME = /^[a-z][a-z0-9-]*$/;
const EYECATCHER = Buffer.from([0xe2, 0xd4, 0xc3, 0xd9]);

function hex(n: number, digits: number): string {
  return `0x${n.toString(16).padStart(digits, '0')}`;
}

/**
 * Checks as much of the header as `head` holds (any prefix of the message,
 * from 0 bytes on), so that a stream reader can refuse garbage as soon as
 * it is visible instead of waiting for a length that never comes.
 */
function checkHeader(head: Buffer): void {
  const n = Math.min(head.length, 4);
  for (let i = 0; i < n; i++) {
    if (head[i] !== EYECATCHER[i]) {
      throw new WireError(`bad CLC eyecatcher ${head.subarray(0, n).toString('hex')}, want e2d4c3d9`);
    }
  }
  if (head.length < 5) return;
  const type = head[4];
  const name = TYPE_NAME.get(type);
  const bounds = LENGTH_BOUNDS.get(type);
  if (name === undefined || bounds === undefined) throw new WireError(`unknown CLC type ${hex(type, 2)}`);
  if (head.length < 7) return;
  const length = head.readUInt16BE(5);
  if (length < bounds.min || length > bounds.max) {
    throw new WireError(`CLC ${name} length ${length} outside ${bounds.min}..${bounds.max}`);
  }
  if (head.length < 8) return;
  const vp = head[7];
  if (vp >> 4 !== CLC_VERSION) throw new WireError(`bad CLC version ${vp >> 4}, want ${CLC_VERSION}`);
  if ((vp & RESERVED_BITS) !== 0) throw new WireError(`reserved CLC header bits ${hex(vp & RESERVED_BITS, 2)} set`);
  const paths = vp & PATH_BITS;
  switch (type) {
    case ClcType.Proposal:
      if (paths === 0) throw new WireError('CLC proposal offers no path');
      break;
    case ClcType.Accept:
    case ClcType.Confirm:
      if (paths !== SmcPath.R && paths !== SmcPath.D) throw new WireError(`CLC ${name} path flags ${paths} are not exactly one path`);
      break;
    default:
      if (paths !== 0) throw new WireError(`CLC ${name} has path flags ${paths}, want 0`);
  }
}

/** Fatal: invalid or overlong UTF-8 is an error, not U+FFFD; ignoreBOM keeps a leading BOM, so a string re-emits to the same bytes. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Reads a body field by field, each read checked against the end of the body. */
class BodyCursor {
  off = CLC_HEADER;
  constructor(
    private readonly buf: Buffer,
    private readonly end: number,
    private readonly name: string,
  ) {}

  private need(n: number, what: string): void {
    if (this.off + n > this.end) throw new WireError(`CLC ${this.name} ${what} runs past the declared length`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.off++];
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
  u64(what: string): number {
    this.need(8, what);
    const hi = this.buf.readUInt32BE(this.off);
    const lo = this.buf.readUInt32BE(this.off + 4);
    // Above 2^53 a number no longer holds every integer: refuse rather than round.
    if (hi > 0x1fffff) throw new WireError(`CLC ${this.name} ${what} 0x${hi.toString(16)}${hex(lo, 8).slice(2)} exceeds 2^53 - 1`);
    this.off += 8;
    return hi * 0x1_0000_0000 + lo;
  }
  str(what: string): string {
    const n = this.u8(`${what} length`);
    if (n > CLC_MAX_STRING) throw new WireError(`CLC ${this.name} ${what} of ${n} bytes exceeds ${CLC_MAX_STRING}`);
    this.need(n, what);
    const bytes = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    try {
      return utf8.decode(bytes);
    } catch {
      throw new WireError(`CLC ${this.name} ${what} is not valid UTF-8`);
    }
  }
  nodeName(what: string): string {
    const s = this.str(what);
    if (!NODE_NAME.test(s)) throw new WireError(`CLC ${this.name} ${what} ${JSON.stringify(s)} is not a node name`);
    return s;
  }
  ringBytes(): number {
    const r = this.u32('ringBytes');
    if (!isRingBytes(r)) throw new WireError(`CLC ${this.name} ringBytes ${r} is not a power of two in ${CLC_MIN_RING_BYTES}..${CLC_MAX_RING_BYTES}`);
    return r;
  }
}

function isRingBytes(r: number): boolean {
  return Number.isInteger(r) && r >= CLC_MIN_RING_BYTES && r <= CLC_MAX_RING_BYTES && (r & (r - 1)) === 0;
}

/**
 * Decodes exactly one message: `buf` must end where its length field says,
 * as ClcReader hands them over. Throws WireError naming the first thing
 * wrong; the checks of the header come first, so garbage is named as such
 * rather than as a bad field.
 */
export function parseClc(buf: Buffer): ClcMessage {
  checkHeader(buf);
  if (buf.length < CLC_HEADER) throw new WireError(`CLC message too short: ${buf.length} bytes`);
  const type = buf[4] as ClcType;
  const name = TYPE_NAME.get(type) as string;
  const length = buf.readUInt16BE(5);
  if (length !== buf.length) throw new WireError(`CLC ${name} length ${length} does not match the ${buf.length} bytes given`);
  const end = length - CLC_TRAILER;
  if (buf.readUInt32BE(end) !== SMC_OPTION_MAGIC) {
    throw new WireError(`bad CLC trailer ${buf.subarray(end).toString('hex')}, want e2d4c3d9`);
  }
  const c = new BodyCursor(buf, end, name);
  const paths = buf[7] & PATH_BITS;
  let msg: ClcMessage;
  switch (type) {
    case ClcType.Proposal:
      msg = { type, paths, lpar: c.nodeName('lpar'), cec: c.nodeName('cec'), ringBytes: c.ringBytes() };
      break;
    case ClcType.Accept:
    case ClcType.Confirm: {
      const path = paths as SmcPath;
      const lpar = c.nodeName('lpar');
      const token = c.u32('token');
      const ringBytes = c.ringBytes();
      const count = c.u8('link count');
      const want = path === SmcPath.R ? R_LINKS : 0;
      if (count !== want) throw new WireError(`CLC ${name} for SMC-${path === SmcPath.R ? 'R' : 'D'} has ${count} links, want ${want}`);
      const links: ClcLink[] = [];
      for (let i = 0; i < count; i++) links.push({ region: c.u32(`link ${i} region`), key: c.u32(`link ${i} key`) });
      msg = { type, path, lpar, token, ringBytes, links };
      break;
    }
    case ClcType.Decline: {
      const reason = c.u32('reason');
      const diagnosis = c.str('diagnosis');
      msg = diagnosis === '' ? { type, reason } : { type, reason, diagnosis };
      break;
    }
    case ClcType.FallbackSync:
      msg = { type, received: c.u64('received') };
      break;
    case ClcType.Closed:
      msg = { type, sent: c.u64('sent') };
      break;
  }
  if (c.off !== end) throw new WireError(`CLC ${name} has ${end - c.off} trailing bytes inside the declared length`);
  return msg;
}

function checkU32(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`bad CLC ${what} ${n}`);
}

/** The UTF-8 of a string field, checked: well formed (no lone surrogates, which would not survive) and at most 64 bytes. */
function strBytes(s: unknown, what: string): Buffer {
  if (typeof s !== 'string') throw new RangeError(`bad CLC ${what}: not a string`);
  const b = Buffer.from(s, 'utf8');
  if (b.toString('utf8') !== s) throw new RangeError(`bad CLC ${what}: not well-formed Unicode`);
  if (b.length > CLC_MAX_STRING) throw new RangeError(`bad CLC ${what}: ${b.length} bytes, more than ${CLC_MAX_STRING}`);
  return b;
}

function nameBytes(s: unknown, what: string): Buffer {
  const b = strBytes(s, what);
  if (!NODE_NAME.test(s as string)) throw new RangeError(`bad CLC ${what} ${JSON.stringify(s)}: not a node name`);
  return b;
}

function checkRingBytes(r: number): void {
  if (!isRingBytes(r)) throw new RangeError(`bad CLC ringBytes ${r}: not a power of two in ${CLC_MIN_RING_BYTES}..${CLC_MAX_RING_BYTES}`);
}

/** Encodes a message, header through trailer. Throws RangeError on a field parseClc would refuse. */
export function emitClc(msg: ClcMessage): Buffer {
  const parts: Buffer[] = [];
  const u8 = (n: number) => parts.push(Buffer.of(n));
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n, 0);
    parts.push(b);
  };
  const str = (b: Buffer) => {
    u8(b.length);
    parts.push(b);
  };
  let paths = 0;
  switch (msg.type) {
    case ClcType.Proposal: {
      paths = msg.paths;
      if (!Number.isInteger(paths) || paths <= 0 || (paths & ~PATH_BITS) !== 0) throw new RangeError(`bad CLC proposal paths ${paths}`);
      const lpar = nameBytes(msg.lpar, 'lpar');
      const cec = nameBytes(msg.cec, 'cec');
      checkRingBytes(msg.ringBytes);
      str(lpar);
      str(cec);
      u32(msg.ringBytes);
      break;
    }
    case ClcType.Accept:
    case ClcType.Confirm: {
      paths = msg.path;
      if (paths !== SmcPath.R && paths !== SmcPath.D) throw new RangeError(`bad CLC path ${paths}: want exactly one of SmcPath.R, SmcPath.D`);
      const lpar = nameBytes(msg.lpar, 'lpar');
      checkU32(msg.token, 'token');
      checkRingBytes(msg.ringBytes);
      const want = paths === SmcPath.R ? R_LINKS : 0;
      if (!Array.isArray(msg.links) || msg.links.length !== want) {
        throw new RangeError(`bad CLC links: SMC-${paths === SmcPath.R ? 'R' : 'D'} takes exactly ${want}`);
      }
      for (const [i, l] of msg.links.entries()) {
        checkU32(l.region, `link ${i} region`);
        checkU32(l.key, `link ${i} key`);
      }
      str(lpar);
      u32(msg.token);
      u32(msg.ringBytes);
      u8(msg.links.length);
      for (const l of msg.links) {
        u32(l.region);
        u32(l.key);
      }
      break;
    }
    case ClcType.Decline: {
      checkU32(msg.reason, 'decline reason');
      const diagnosis = msg.diagnosis === undefined ? Buffer.alloc(0) : strBytes(msg.diagnosis, 'diagnosis');
      u32(msg.reason);
      str(diagnosis);
      break;
    }
    case ClcType.FallbackSync:
    case ClcType.Closed: {
      const [r, what] = msg.type === ClcType.FallbackSync ? [msg.received, 'received'] : [msg.sent, 'sent'];
      if (!Number.isSafeInteger(r) || r < 0) throw new RangeError(`bad CLC ${what} byte count ${r}`);
      u32(Math.floor(r / 0x1_0000_0000));
      u32(r % 0x1_0000_0000);
      break;
    }
    default:
      throw new RangeError(`bad CLC type ${(msg as { type: unknown }).type}`);
  }
  const bodyLength = parts.reduce((n, p) => n + p.length, 0);
  const length = OVERHEAD + bodyLength;
  const out = Buffer.alloc(length);
  out.writeUInt32BE(SMC_OPTION_MAGIC, 0);
  out[4] = msg.type;
  out.writeUInt16BE(length, 5);
  out[7] = (CLC_VERSION << 4) | paths;
  let off = CLC_HEADER;
  for (const p of parts) off += p.copy(out, off);
  out.writeUInt32BE(SMC_OPTION_MAGIC, off);
  return out;
}

/**
 * Cuts CLC messages out of a TCP byte stream. TCP keeps no message
 * boundaries, so a message may arrive in pieces or share a chunk with the
 * next one, or with application data after a decline or fallback sync.
 *
 * Keeps the chunks it is pushed without copying until it must join them; a
 * caller must not change a chunk after pushing it.
 */
export class ClcReader {
  private chunks: Buffer[] = [];
  private total = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Bytes pushed and not yet consumed. */
  get buffered(): number {
    return this.total;
  }

  /**
   * The next message once all of it has arrived, else undefined. Throws
   * WireError as soon as the bytes at hand prove the stream is not CLC: a
   * bad eyecatcher byte, an unknown type, a length no message of that type
   * has, a bad version byte; or, once the whole message is in, anything
   * parseClc refuses. A throw consumes nothing, so the bytes stay for
   * takeRest and a retry throws the same error.
   */
  next(): ClcMessage | undefined {
    const head = this.peek(CLC_HEADER);
    checkHeader(head);
    if (head.length < CLC_HEADER) return undefined;
    const length = head.readUInt16BE(5);
    if (this.total < length) return undefined;
    const msg = parseClc(this.peek(length));
    this.consume(length);
    return msg;
  }

  /** Everything after the messages consumed, in order; the reader is left empty. */
  takeRest(): Buffer[] {
    const rest = this.chunks;
    this.chunks = [];
    this.total = 0;
    return rest;
  }

  /**
   * The first min(n, buffered) bytes as one buffer. Joined chunks replace
   * the pieces they came from, so bytes fed one at a time are joined once,
   * not again on every call.
   */
  private peek(n: number): Buffer {
    const want = Math.min(n, this.total);
    if (this.chunks.length === 0) return Buffer.alloc(0);
    if (this.chunks[0].length < want) {
      let k = 0;
      let have = 0;
      while (have < want) have += this.chunks[k++].length;
      this.chunks.splice(0, k, Buffer.concat(this.chunks.slice(0, k), have));
    }
    return this.chunks[0].subarray(0, want);
  }

  private consume(n: number): void {
    this.total -= n;
    while (n > 0) {
      const first = this.chunks[0];
      if (first.length <= n) {
        this.chunks.shift();
        n -= first.length;
      } else {
        this.chunks[0] = first.subarray(n);
        n = 0;
      }
    }
  }
}
