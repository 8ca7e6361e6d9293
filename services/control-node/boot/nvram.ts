import fs from 'node:fs';
import path from 'node:path';
import { type Check, FieldError, int, recordOf, shape } from '../../../shared/protocol/check.ts';
import { readStateFile, writeStateFile } from '../../../shared/runtime/state-file.ts';
import { assignedMac, macToString, parseMac } from '../../../shared/wire/mac.ts';

interface NvramData {
  /** Next MAC sequence number; never handed out twice. */
  counter: number;
  /** Assigned MACs by interface ("lpar/vlan"), so an interface keeps its MAC. */
  macs: Record<string, string>;
}

/** The count an assigned MAC carries in its last three bytes (shared/wire/mac.ts assignedMac). */
function macCount(mac: string): number {
  const b = parseMac(mac);
  return (b[3] << 16) | (b[4] << 8) | b[5];
}

const macText: Check<string> = (v, f) => {
  try {
    if (typeof v === 'string' && parseMac(v)[0] === 0x02) return v;
  } catch {
    /* refused below */
  }
  throw new FieldError(f, 'an assigned MAC (02:…)', v);
};

/**
 * The NVRAM as read back: a counter past every MAC it lists (issue 11 item 8:
 * a counter behind a MAC already handed out would hand that MAC out again).
 */
const nvramData: Check<NvramData> = (v, f) => {
  const d = shape({ counter: int(1, 0x1000000), macs: recordOf(macText) })(v, f);
  for (const [key, mac] of Object.entries(d.macs)) {
    if (macCount(mac) >= d.counter) throw new FieldError(`macs.${key}`, `a MAC counted below the counter (${d.counter})`, mac);
  }
  return d;
};

/**
 * A control node's NVRAM (seed 004, "Network Architecture": MACs carry the
 * locally administered bit, the serial of the control node that defined the
 * interface, and a count from a persistent sequence counter kept in NVRAM).
 * It lives in the control node's data directory and survives restarts; the
 * counter is written (atomically, shared/runtime/state-file.ts) before a MAC
 * leaves, so no MAC is ever handed out twice, and a corrupt NVRAM stops the
 * control node naming the file rather than starting its counter again at 1.
 */
export class Nvram {
  private data: NvramData = { counter: 1, macs: {} };
  private readonly file: string;

  constructor(
    dir: string,
    private readonly serial: number,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = path.join(dir, 'nvram.json');
    const stored = readStateFile(this.file, nvramData);
    if (stored) this.data = stored;
  }

  /** The interface's MAC: the one it had, or the next from the counter. */
  macFor(lpar: string, vlan: string): string {
    const key = `${lpar}/${vlan}`;
    const known = this.data.macs[key];
    if (known) return known;
    const mac = macToString(assignedMac(this.serial, this.data.counter));
    const next: NvramData = { counter: this.data.counter + 1, macs: { ...this.data.macs, [key]: mac } };
    // On disk first: if the write fails nothing changes here, and the MAC is not handed out.
    writeStateFile(this.file, next);
    this.data = next;
    return mac;
  }

  snapshot(): NvramData {
    return { counter: this.data.counter, macs: { ...this.data.macs } };
  }
}
