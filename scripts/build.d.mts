// Types of scripts/build.mjs for its TypeScript callers (the tests' global setup).
export const REPO_ROOT: string;
export const BUILD_ROOT: string;
export const BUILD_COMMAND: string;
export function staleReason(root?: string): string | undefined;
export function ensureBuilt(opts?: { force?: boolean; log?: (line: string) => void; root?: string }): void;
