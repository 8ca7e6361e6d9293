import { decodeControl, encodeControl, type ControlMessage } from '../control/codec.ts';
import type { Rvi } from '../rclan/rvi.ts';

/**
 * Messages on a management RVI between an LPAR and a control node (seed 004,
 * "Network Architecture": as each processor boots it establishes a VI to the
 * control node logic and obtains its identity and data link configuration).
 *
 *   lpar → cn   { t: 'boot', name }             asks for its configuration
 *   cn → lpar   { t: 'config', name, cec, controlNode, serial, platform, ethernet, interfaces, apps,
 *                 smc: { enabled, ringBytes, pollUs, clcTimeoutMs } }
 *   lpar → cn   { t: 'health', state, detail }  reported after boot and on change
 *   lpar → cn   { t: 'smcr-links', peer }       asks for an SMC-R link group to another LPAR
 *   cn → lpar   { t: 'smcr-links', peer, ok: true, rvis: [idA, idB] }   RVIs of purposes smcr-a, smcr-b
 *               { t: 'smcr-links', peer, ok: false, reason }          refused (no common virtual LAN, ...)
 */
export function sendMgmt(rvi: Rvi, msg: ControlMessage): boolean {
  return rvi.send(encodeControl(msg));
}

/** Decodes one management message; undefined (to be counted and dropped) when it is not one. */
export function decodeMgmt(payload: Buffer): ControlMessage | undefined {
  try {
    return decodeControl(payload);
  } catch {
    return undefined;
  }
}
