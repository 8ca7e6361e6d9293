import fs from 'node:fs';
import path from 'node:path';
import { assignedMac, macToString } from '../../../shared/wire/mac.ts';

interface NvramData {
  /** Next MAC sequence number; never handed out twice. */
  counter: number;
  /** Assigned MACs by interface ("lpar/vlan"), so an interface keeps its MAC. */
  macs: Record<string, string>;
}

/**
 * A control node's NVRAM (seed 004, "Network Architecture": MACs carry the
 * locally administered bit, the serial of the control node that defined the
 * interface, and a count from a persistent sequence counter kept in NVRAM).
 * It lives in the control node's data directory and survives restarts; the
 * counter is written before a MAC leaves, so no MAC is ever handed out twice.
 */
export class Nvram {
  private data: NvramData = { counter: 1, macs: {} };
  private readonly file: string;

  constructor(
    dir: string,
    private readonly serial: number,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, 'nvram.json');
    try {
      this.data = JSON.parse(fs.readFileSync(this.file, 'utf8')) as NvramData;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`NVRAM ${this.file} is unreadable: ${(err as Error).message}`);
    }
  }

  /** The interface's MAC: the one it had, or the next from the counter. */
  macFor(lpar: string, vlan: string): string {
    const key = `${lpar}/${vlan}`;
    const known = this.data.macs[key];
    if (known) return known;
    const mac = macToString(assignedMac(this.serial, this.data.counter));
    this.data.counter++;
    this.data.macs[key] = mac;
    this.save();
    return mac;
  }

  snapshot(): NvramData {
    return { counter: this.data.counter, macs: { ...this.data.macs } };
  }

  private save(): void {
    const tmp = `${this.file}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    fs.writeSync(fd, JSON.stringify(this.data));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, this.file);
  }
}
