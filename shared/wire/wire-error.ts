/**
 * The one error every wire-format parser throws on bad input, so a receive
 * path can drop a malformed packet with a single `instanceof` check and let
 * anything else (a bug) propagate.
 */
export class WireError extends Error {
  override name = 'WireError';
}
