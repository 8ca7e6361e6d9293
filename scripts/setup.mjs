#!/usr/bin/env node
// `npm test`'s pretest step: the programs the test suite runs beside Node.
// On a fresh Debian machine `npm install && npm test` must be all it takes
// (issue 9): run as root, this installs what is missing with apt-get; run as
// anyone else, it fails at once naming the packages, instead of four tests
// failing minutes later.
//
//   tshark  decodes the platform's frames (wire and capture tests) and
//           watches the TAP in the Linux-as-a-peer test and the README
//   socat   bridges a virtual LAN to a TAP device (lparlab tap attach)
//   curl    the host's HTTP client on the TAP (test and README)
import { execFileSync, spawnSync } from 'node:child_process';

const PACKAGES = [
  { pkg: 'tshark', command: 'tshark' },
  { pkg: 'socat', command: 'socat' },
  { pkg: 'curl', command: 'curl' },
];

const has = (command) => spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
const missing = PACKAGES.filter((p) => !has(p.command));
if (missing.length === 0) process.exit(0);

const names = missing.map((p) => p.pkg).join(' ');
const fail = (why) => {
  process.stderr.write(`setup: the tests need ${names}, which ${missing.length === 1 ? 'is' : 'are'} not installed; ${why}\n`);
  process.exit(1);
};
if (!has('apt-get')) fail(`install ${missing.length === 1 ? 'it' : 'them'} with your package manager`);
if (process.getuid?.() !== 0) fail(`run: sudo apt-get install ${names}  (or npm test as root, which installs them)`);

process.stderr.write(`setup: installing ${names} (apt-get)\n`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
try {
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing.map((p) => p.pkg)], { stdio: 'inherit', env });
} catch (err) {
  fail(`apt-get failed: ${err.message}`);
}
const still = missing.filter((p) => !has(p.command));
if (still.length) fail(`after apt-get, ${still.map((p) => p.command).join(', ')} still cannot be found`);
