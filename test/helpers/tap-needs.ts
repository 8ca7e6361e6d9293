import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/** The Debian package that ships a tool, where it is not the tool's own name. */
const PACKAGE_OF: Record<string, string> = { ip: 'iproute2' };

/**
 * What a test that bridges a virtual LAN to a Linux TAP device lacks on this
 * host: root (the supervisor creates the device), /dev/net/tun, and each of
 * `tools` on the PATH, named with the package that brings it. Such a test
 * fails naming these; it never skips silently.
 */
export function missingForTap(tools: readonly string[]): string[] {
  const out: string[] = [];
  if (process.getuid?.() !== 0) out.push('root (CAP_NET_ADMIN)');
  if (!fs.existsSync('/dev/net/tun')) out.push('/dev/net/tun');
  for (const tool of tools) {
    try {
      execFileSync('which', [tool]);
    } catch {
      out.push(`${tool} (apt-get install ${PACKAGE_OF[tool] ?? tool})`);
    }
  }
  return out;
}
