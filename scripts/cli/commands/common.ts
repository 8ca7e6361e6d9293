import { GLOBAL_OPTIONS } from '../command.ts';

/** Options several verbs share, each verb still listing them in its own table. */
export const JSON_OPTION = { json: { type: 'boolean', help: 'one JSON object on stdout instead of text' } } as const;

/** up, init and down keep -c for --config (the platform file is what they are about). */
export const CONFIG_WITH_SHORT = { config: { ...GLOBAL_OPTIONS.config, short: 'c' } } as const;

/** Writes one line of JSON. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
