/**
 * What this partition's SMC layer runs with (seed 002): its control node's
 * grant (the platform file's `smc` section and the LPAR's own switch), with
 * the platform default for whatever the grant leaves out or bounds
 * differently (a control node of another build), and the partition's own
 * environment, which can only turn SMC off, never on.
 */
import { smcGrant } from '../../../../shared/protocol/mgmt.ts';
import { decodeWith } from '../../../../shared/protocol/check.ts';
import { DEFAULT_SMC, type PartitionSmc, type SmcGrant } from '../../../../shared/platform/smc-settings.ts';

/** `LPARLAB_SMC=off` (or 0, false) in a partition's environment turns SMC off whatever the platform file says. */
export const SMC_ENV = 'LPARLAB_SMC';

/** The partition's settings from its (checked) grant. */
export function partitionSmc(grant: Partial<SmcGrant>, env: NodeJS.ProcessEnv = process.env): PartitionSmc {
  const smc: PartitionSmc = {
    enabled: grant.enabled !== false,
    d: grant.d !== false,
    r: grant.r !== false,
    offReason: grant.enabled === false ? 'SMC is off for this partition in the platform file' : null,
    ringBytes: grant.ringBytes ?? DEFAULT_SMC.ringBytes,
    pollUs: grant.pollUs ?? DEFAULT_SMC.pollUs,
    clcTimeoutMs: grant.clcTimeoutMs ?? DEFAULT_SMC.clcTimeoutMs,
  };
  const forced = env[SMC_ENV]?.trim().toLowerCase();
  if (forced === 'off' || forced === '0' || forced === 'false') {
    smc.enabled = false;
    smc.offReason = `SMC is off in this partition's environment (${SMC_ENV}=${env[SMC_ENV]})`;
  }
  return smc;
}

/** The same from the raw `smc` map of a config message (anything else: every default). */
export function parseSmcConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): PartitionSmc {
  const read = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? decodeWith(smcGrant, 'smc', raw) : undefined;
  return partitionSmc(read?.ok ? read.value : {}, env);
}
