/**
 * A partition's hypervisor session in a process of its own, for tests that
 * kill it: test/integration/hypervisor.test.ts.
 *
 *   node --import tsx test/helpers/hv-lpar-child.ts RUN_DIR NAME HV_URL PEER
 *
 * Opens the session as NAME with NAME's credential, allocates an element
 * shared with PEER, prints the grant as one JSON line, and stays until killed.
 */
import pino from 'pino';
import { RunDir } from '../../shared/runtime/run-dir.ts';
import { HypervisorClient } from '../../services/lpar/hypervisor-client.ts';

const [runDir, name, url, peer] = process.argv.slice(2);
const hv = new HypervisorClient({ name, credential: new RunDir(runDir).readCredential(name), url, log: pino({ level: 'silent' }) });
await hv.start();
const grant = await hv.alloc(peer);
process.stdout.write(`${JSON.stringify(grant)}\n`);
setInterval(() => {}, 60_000);
