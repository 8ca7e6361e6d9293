import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlChannel } from '../../shared/control/channel.ts';
import { authenticateTo } from '../../shared/control/auth.ts';
import { connectLink } from '../../shared/link/transport.ts';
import { processLogger } from '../../shared/runtime/log.ts';
import { REPO_ROOT, fabricAddresses } from '../../services/supervisor/process-plan.ts';
import { FAST_RCLAN, platformYaml } from '../helpers/platform-yaml.ts';
import { TestPlatform, waitFor } from '../helpers/platform.ts';

const log = processLogger('test', 'test');
const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures');

/** Issue 11 item 11: a partition's own code against the authority model. */
describe('tenant code against the authority model', () => {
  let p: TestPlatform;

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('this test needs root: partitions are jailed away from keys/ only by a root supervisor, and setpriv must switch users');
    p = await TestPlatform.boot(
      platformYaml({
        rclan: FAST_RCLAN,
        lpars: 3,
        vlans: [
          { name: 'blue', subnet: '10.1.0.0/24', members: ['lpar1', 'lpar2'] },
          { name: 'green', subnet: '10.2.0.0/24', members: ['lpar2', 'lpar3'] },
        ],
      }),
    );
  }, 180_000);
  afterAll(async () => {
    expect(await p?.down()).toEqual([]);
  });

  it('an app module in lpar1 reads no key, and no admin socket, fabric login or supervisor does its bidding', async () => {
    const keys = path.join(p.runDir.root, 'keys');
    const options = { repo: REPO_ROOT, keys, run: p.runDir.root, fm: p.runDir.socket('fm'), cnAdmin: p.runDir.adminSocket('cn1'), supervisor: p.runDir.socket('supervisor') };
    await p.admin('lpar1', { t: 'app-start', module: path.join(FIXTURES, 'tenant-app.mjs'), port: 9999, options });
    const r = (await p.admin('lpar1', { t: 'app-report', port: 9999 })) as unknown as Record<string, string>;
    for (const f of ['mgmt.cred', 'platform.key', 'lpar2.cred', 'cn1.cred', 'cn1.admin', 'supervisor.admin']) expect(r[`read ${f}`], f).not.toBe('read');
    // Nor can it rewrite what the platform reads at its next start.
    for (const f of ['platform.json', 'data/fabric-manager/fabric.json', 'data/cn1/tenant']) expect(r[`write ${f}`], f).not.toBe('written');
    expect(r['fm as mgmt']).toMatch(/^refused: bad credential/);
    expect(r['cn1 vlan-join']).toMatch(/^refused/);
    expect(r['cn1 vlan-join as mgmt']).toMatch(/^refused: bad credential/);
    expect(r['supervisor ps']).toMatch(/^refused/);
    // Nothing it asked for happened.
    const rvis = (await p.fm({ t: 'rvi-list' })).rvis as Array<{ purpose: string }>;
    expect(rvis.map((x) => x.purpose)).not.toContain('tenant');
    const cn = (await p.admin('cn1', { t: 'cn-status' })) as { vlans?: Array<{ name: string; members: Array<{ lpar: string }> }> };
    const green = cn.vlans?.find((v) => v.name === 'green');
    expect(green?.members.map((m) => m.lpar) ?? []).not.toContain('lpar1');
  }, 60_000);

  it('shows a partition only its own RVIs and locates only addresses on its own virtual LANs', async () => {
    // A session as lpar1 (the real one stopped meanwhile: its session would take the name back).
    await p.kill('lpar1', 'STOP');
    const ch = new ControlChannel(await connectLink(fabricAddresses(p.runDir.readPlatform(), p.runDir).fm), log);
    try {
      await authenticateTo(ch, 'lpar1', p.runDir.readCredential('lpar1'));
      // The control node publishes members' addresses as they register.
      await waitFor('lpar2 located on blue', async () => (await ch.request({ t: 'locate', endpoint: '10.1.0.2' })).node === 'lpar2', 30_000, 100);
      const st = await ch.request({ t: 'fm-status' });
      const rvis = st.rvis as Array<{ a: string; b: string }>;
      expect(rvis.length).toBeGreaterThan(0);
      expect(rvis.filter((x) => x.a !== 'lpar1' && x.b !== 'lpar1')).toEqual([]);
      // lpar3 is on green only, where lpar1 is not: lpar1 learns nothing of it, by address or by name.
      expect((await ch.request({ t: 'locate', endpoint: '10.2.0.3' })).node).toBeNull();
      expect((await ch.request({ t: 'locate', endpoint: 'lpar3' })).node).toBeNull();
      expect((await ch.request({ t: 'locate', endpoint: 'lpar2' })).node).toBe('lpar2');
    } finally {
      ch.close();
      await p.kill('lpar1', 'CONT');
    }
    // The operator still sees everything.
    expect((await p.fm({ t: 'locate', endpoint: '10.2.0.3' })).node).toBe('lpar3');
  }, 60_000);

  it('an unprivileged user gets nothing from any admin socket or the supervisor', async () => {
    const names = ['fabric-manager', 'plane-a', 'cn1', 'lpar1', 'lpar2'];
    const sockets = [...names.map((n) => p.runDir.adminSocket(n)), p.runDir.socket('supervisor')];
    const run = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, path.join(FIXTURES, 'unprivileged-admin.mjs'), ...sockets], { encoding: 'utf8', timeout: 60_000 });
    if (run.error) throw new Error(`setpriv could not run: ${run.error.message}`);
    expect(run.status, run.stderr).toBe(0);
    const got = JSON.parse(run.stdout) as Record<string, string>;
    for (const s of sockets) expect(got[s], s).not.toBe('answered');
    // Same uid as the platform, but without the operator's credential: refused too.
    const same = spawnSync(process.execPath, [path.join(FIXTURES, 'unprivileged-admin.mjs'), ...sockets], { encoding: 'utf8', timeout: 60_000 });
    const sameGot = JSON.parse(same.stdout) as Record<string, string>;
    for (const s of sockets) expect(sameGot[s], s).toBe('closed');
  }, 90_000);
});
