import pino, { type Logger } from 'pino';

/**
 * One pino JSON logger per process; every line carries the process id, the
 * role and the node name, and each module takes a child with its component.
 * Level from LPARLAB_LOG (default info).
 */
export function processLogger(role: string, name: string): Logger {
  return pino({
    level: process.env.LPARLAB_LOG ?? 'info',
    base: { pid: process.pid, role, name },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
