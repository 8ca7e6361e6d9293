import type { OptionsTable } from './options.ts';

export type ServiceRole = 'fabric-manager' | 'fabric-switch' | 'hypervisor' | 'control-node' | 'lpar';

/**
 * The descriptor the supervisor hands every child for --parent-fd: the
 * secrets go on 3 (shared/control/process-secrets.ts), this one is next.
 */
export const LAUNCHER_FD = 4;

/**
 * The command line of every service process, as one table per role: the
 * launcher's process plan builds these flags and the service parses them
 * with the same table (shared/runtime/options.ts), so a flag one side does
 * not know is an error at start, not a silent default.
 */
const common = {
  id: { type: 'string', arg: 'NAME', help: 'this process’s name in the platform' },
  'run-dir': { type: 'string', arg: 'DIR', help: 'the platform’s run directory' },
  'parent-fd': { type: 'integer', arg: 'FD', min: 3, help: 'end when this descriptor, which the launcher holds open, reads end of file (the launcher is gone)' },
} as const satisfies OptionsTable;

export const SERVICE_OPTIONS = {
  'fabric-manager': {
    ...common,
    listen: { type: 'string', arg: 'URL', help: 'where nodes and management connect' },
    plane: { type: 'string', multiple: true, arg: 'NAME=URL', help: 'a plane’s switch, in the platform’s order' },
  },
  'fabric-switch': {
    ...common,
    plane: { type: 'string', arg: 'NAME', help: 'the plane this switch is' },
    listen: { type: 'string', arg: 'URL', help: 'where nodes attach their ports' },
    fm: { type: 'string', arg: 'URL', help: 'the fabric manager' },
  },
  hypervisor: {
    ...common,
    cec: { type: 'string', arg: 'CEC', help: 'the CEC whose partitions it serves' },
    listen: { type: 'string', arg: 'URL', help: 'where its partitions connect' },
  },
  'control-node': {
    ...common,
    fm: { type: 'string', arg: 'URL', help: 'the fabric manager' },
  },
  lpar: {
    ...common,
    fm: { type: 'string', arg: 'URL', help: 'the fabric manager' },
    hv: { type: 'string', arg: 'URL', help: 'the CEC’s hypervisor (SMC-D); absent: SMC-R only' },
  },
} as const satisfies Record<ServiceRole, OptionsTable>;

export type ServiceOptions = typeof SERVICE_OPTIONS;
