import type { Link } from './link.ts';

/**
 * What a listener accepts from a peer that has not authenticated yet (issue
 * 11 item 10: with `transport: ws` any local user reached pre-auth code, and
 * 30 messages of 60 MB took a plane from 99 MB to 1.85 GB). Before the hello
 * is checked, the only frame a peer has reason to send is that hello (a name,
 * a 32-byte proof and a few fields), so the limits are small; after it, a
 * link carries frames up to MAX_FRAME as before.
 */
export const PRE_AUTH = {
  /** Largest frame (prefix included) taken before authentication. */
  maxFrame: 4096,
  /** Frames taken before authentication: a hello, with room for a retry. */
  maxFrames: 4,
  /** Bytes a connection may send before authenticating, counted off the wire (a WebSocket buffers a whole message before it is seen). */
  budget: 64 * 1024,
  /** Time a connection has to authenticate; then it is closed. */
  deadlineMs: 5000,
} as const;

/** What a transport lifts once its link's peer has authenticated (a WebSocket's raw byte budget and deadline). */
const transportGuards = new WeakMap<Link, () => void>();

/** A transport's own pre-authentication guard on `link`, lifted by the first `liftPreAuth(link)`. */
export function registerTransportGuard(link: Link, lift: () => void): void {
  transportGuards.set(link, lift);
}

export interface PreAuthGuard {
  /** The peer proved who it is: frames of any size up to MAX_FRAME from now on, no deadline. */
  lift(): void;
}

/**
 * Guards a freshly accepted link until `lift()`: a frame above
 * PRE_AUTH.maxFrame, more than PRE_AUTH.maxFrames frames or PRE_AUTH.budget
 * bytes, or no authentication within PRE_AUTH.deadlineMs closes it, after
 * `refuse` heard why. Works on any transport (the frames a link delivers);
 * a WebSocket link also counts raw bytes (registerTransportGuard).
 */
export function guardPreAuth(link: Link, refuse: (reason: string) => void): PreAuthGuard {
  const inner = link.onFrame;
  let frames = 0;
  let bytes = 0;
  let done = false;
  const stop = (reason: string) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    refuse(reason);
    link.close();
  };
  const timer = setTimeout(() => stop(`not authenticated within ${PRE_AUTH.deadlineMs} ms`), PRE_AUTH.deadlineMs);
  timer.unref?.();
  link.onFrame = (frame) => {
    if (done) return;
    frames++;
    bytes += frame.length;
    if (frame.length > PRE_AUTH.maxFrame) return stop(`a ${frame.length}-byte frame before authentication (limit ${PRE_AUTH.maxFrame})`);
    if (frames > PRE_AUTH.maxFrames) return stop(`more than ${PRE_AUTH.maxFrames} frames before authentication`);
    if (bytes > PRE_AUTH.budget) return stop(`more than ${PRE_AUTH.budget} bytes before authentication`);
    inner(frame);
  };
  return {
    lift: () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      link.onFrame = inner;
      transportGuards.get(link)?.();
      transportGuards.delete(link);
    },
  };
}
