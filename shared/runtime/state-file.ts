import fs from 'node:fs';

export type Health = 'starting' | 'healthy' | 'degraded' | 'stopping';

export interface ProcessState {
  name: string;
  role: string;
  pid: number;
  health: Health;
  detail: string;
  since: string;
}

/** Written whole to a temporary file and renamed, so a reader never sees half of it. */
export function writeState(file: string, state: ProcessState): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state));
  fs.renameSync(tmp, file);
}

export function readState(file: string): ProcessState | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as ProcessState;
  } catch {
    return undefined;
  }
}
