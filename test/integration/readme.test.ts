import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../scripts/cli/commands/index.ts';
import { KEPT_AFTER_DOWN } from '../../services/supervisor/clean.ts';
import { processPlan, REPO_ROOT } from '../../services/supervisor/process-plan.ts';
import { RunDir } from '../../shared/runtime/run-dir.ts';
import { readState } from '../../shared/runtime/state-file.ts';
import { cli, shmLeft, sleep, waitFor } from '../helpers/platform.ts';

/**
 * Every command of README.md's ```sh blocks, run as written (issue 9, item 2):
 * in README order, each block through bash (`set -e -o pipefail`, so a
 * failing line fails the block), against the default platform that the
 * README itself boots (`npm start`), with no --run-dir: LPARLAB_RUN_DIR gives
 * this test its own run directory. A block added to the README is tested
 * without touching this file; a line that fails is a failing test.
 *
 * What the test needs to know about particular lines is in the tables below,
 * matched against a line with its trailing comment removed:
 *   NOT_RUN     lines that cannot run inside a test, each with the reason;
 *   FOREGROUND  lines that run until Ctrl-C: started in their own process
 *               group, awaited until their output says they are ready, then
 *               either left running for the blocks after them ('end': stopped
 *               with SIGINT when the test ends) or stopped with SIGINT at once
 *               ('ready'), as a person watching them would. Either way they
 *               must exit cleanly.
 * Every other line runs in its block's bash script (a foreground line splits
 * the block in two scripts around it). Commands run in a scratch directory
 * inside the repository, so `npx lparlab` finds the project and files the
 * README writes (blue.pcap) are removed afterwards.
 */

interface NotRun {
  match: RegExp;
  reason: string;
}
const NOT_RUN: NotRun[] = [
  { match: /^npm install$/, reason: 'installs the packages: it is what the test suite runs after, never inside a test (and never into the lead’s node_modules)' },
  { match: /^npm test$/, reason: 'the test suite itself, which this test is part of' },
];

interface Foreground {
  match: RegExp;
  /** Output (stdout or stderr) that says it is up. */
  ready: RegExp;
  /** 'end': keep it for the blocks after it, Ctrl-C at the end; 'ready': Ctrl-C once ready. */
  until: 'end' | 'ready';
  /** Also wait until every process of the platform is healthy (it boots or is part of the platform). */
  platformHealthy?: boolean;
}
const FOREGROUND: Foreground[] = [
  { match: /^npm start$/, ready: /platform \S+ is up/, until: 'end', platformHealthy: true },
  { match: /^npx lparlab svc .*--inspect\b/, ready: /Debugger listening on ws:/, until: 'end', platformHealthy: true },
  { match: /^tshark -i /, ready: /Capturing on /, until: 'ready' },
];

const SCRIPT_TIMEOUT_MS = 300_000;
const READY_TIMEOUT_MS = 150_000;
/** The README's TAP device: the test refuses to start if the host has one already (another run's). */
const README_TAP = 'lpltap0';

interface Block {
  heading: string;
  lines: string[];
}

/** The ```sh blocks of a Markdown text, each with the heading above it; backslash-continued lines joined. */
export function shBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  let heading = '(top)';
  let current: string[] | undefined;
  for (const line of markdown.split('\n')) {
    if (current) {
      if (/^```\s*$/.test(line)) {
        blocks.push({ heading, lines: current.join('\n').replace(/\\\n/g, ' ').split('\n').filter((l) => l.trim() !== '') });
        current = undefined;
      } else current.push(line);
    } else if (/^```sh\s*$/.test(line)) current = [];
    else if (/^#+ /.test(line)) heading = line.replace(/^#+ /, '');
  }
  if (current) throw new Error(`README: unclosed \`\`\`sh block under "${heading}"`);
  return blocks;
}

/** A line without its trailing comment (`  # ...`), for matching against the tables. */
const commandOf = (line: string) => line.replace(/\s+#\s.*$/, '').trim();

type Step = { kind: 'script'; lines: string[] } | { kind: 'foreground'; line: string; spec: Foreground } | { kind: 'not-run'; line: string; reason: string };

function stepsOf(block: Block): Step[] {
  const steps: Step[] = [];
  for (const line of block.lines) {
    const cmd = commandOf(line);
    const skip = NOT_RUN.find((n) => n.match.test(cmd));
    const fg = FOREGROUND.find((f) => f.match.test(cmd));
    if (skip) steps.push({ kind: 'not-run', line, reason: skip.reason });
    else if (fg) steps.push({ kind: 'foreground', line, spec: fg });
    else {
      const last = steps.at(-1);
      if (last?.kind === 'script') last.lines.push(line);
      else steps.push({ kind: 'script', lines: [line] });
    }
  }
  return steps;
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lpl-readme-'));
const runDir = new RunDir(path.join(root, 'run'));
const env = { ...process.env, LPARLAB_RUN_DIR: runDir.root };
// Inside the repository (npx and npm find the project by walking up), removed at the end.
const work = fs.mkdtempSync(path.join(REPO_ROOT, '.readme-test-'));
const foregrounds: Array<{ line: string; child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; output: () => string }> = [];

function run(script: string): { child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; output: () => string } {
  // Its own process group, as a terminal gives a command: Ctrl-C (SIGINT) and cleanup reach all of it.
  const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, exited, output: () => out };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    /* already gone */
  }
}

async function platformHealthy(): Promise<void> {
  await waitFor(
    'every process of the platform healthy',
    () => fs.existsSync(runDir.platformFile) && processPlan(runDir.readPlatform(), runDir).every((p) => readState(runDir.stateFile(p.name))?.health === 'healthy'),
    READY_TIMEOUT_MS,
    100,
  );
}

async function runScript(lines: string[]): Promise<void> {
  const r = run(lines.join('\n'));
  const timer = setTimeout(() => killGroup(r.child, 'SIGKILL'), SCRIPT_TIMEOUT_MS);
  const { code, signal } = await r.exited;
  clearTimeout(timer);
  // A background job the block left running (`cmd &` without `wait`) goes with its group.
  killGroup(r.child, 'SIGKILL');
  if (code !== 0) throw new Error(`README lines failed (${signal ?? `exit ${code}`}):\n${lines.map((l) => `  $ ${l}`).join('\n')}\n--- output ---\n${r.output()}`);
}

async function startForeground(line: string, spec: Foreground): Promise<void> {
  const r = run(line);
  const entry = { line, ...r };
  if (spec.until === 'end') foregrounds.push(entry);
  let gone = false;
  void r.exited.then(() => (gone = true));
  try {
    await waitFor(`"${line}" to be ready (${spec.ready})`, () => gone || spec.ready.test(r.output()), READY_TIMEOUT_MS, 50);
    if (gone) throw new Error(`"${line}" exited before it was ready:\n${r.output()}`);
    if (spec.platformHealthy) await platformHealthy();
  } catch (err) {
    killGroup(r.child, 'SIGKILL');
    throw err;
  }
  if (spec.until === 'ready') {
    await sleep(500);
    await stopForeground(entry);
  }
}

/** Ctrl-C, then a clean exit within 20 s (exit 0, or death by the SIGINT itself). */
async function stopForeground(f: { line: string; child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; output: () => string }): Promise<void> {
  killGroup(f.child, 'SIGINT');
  const timer = setTimeout(() => killGroup(f.child, 'SIGKILL'), 20_000);
  const { code, signal } = await f.exited;
  clearTimeout(timer);
  killGroup(f.child, 'SIGKILL');
  if (!(code === 0 || code === 130 || signal === 'SIGINT')) throw new Error(`"${f.line}" did not end cleanly on Ctrl-C (${signal ?? `exit ${code}`}):\n${f.output()}`);
}

const blocks = shBlocks(fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8'));

describe.sequential('README.md, every sh block as written', () => {
  afterAll(async () => {
    const errors: string[] = [];
    // Foregrounds still running (the blocks after them used them): Ctrl-C, newest first.
    for (const f of foregrounds.reverse()) {
      if (f.child.exitCode !== null || f.child.signalCode !== null) continue;
      await stopForeground(f).catch((err: Error) => errors.push(err.message));
    }
    const down = await cli(['down'], 60_000, { env: { LPARLAB_RUN_DIR: runDir.root } });
    if (down.code !== 0) errors.push(`lparlab down: ${down.stderr}`);
    // What the README says down keeps, and nothing else (no keys, sockets or state; issue 11 item 14).
    const left = fs.existsSync(runDir.root) ? fs.readdirSync(runDir.root).filter((f) => !(KEPT_AFTER_DOWN as readonly string[]).includes(f)) : [];
    if (left.length) errors.push(`left in the run directory after down: ${left.join(', ')}`);
    const platform = fs.existsSync(runDir.platformFile) ? runDir.readPlatform().name : undefined;
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(root, { recursive: true, force: true });
    if (platform && shmLeft(platform).length) errors.push(`shared memory left: ${shmLeft(platform).join(', ')}`);
    if (fs.existsSync(`/sys/class/net/${README_TAP}`)) errors.push(`TAP ${README_TAP} left behind`);
    expect(errors).toEqual([]);
  });

  it('has sh blocks, and every line the tables name is still in it', () => {
    expect(blocks.length).toBeGreaterThan(0);
    const commands = blocks.flatMap((b) => b.lines.map(commandOf));
    // A table entry that matches nothing is stale: the README changed under it.
    for (const t of [...NOT_RUN, ...FOREGROUND]) expect(commands.some((c) => t.match.test(c)), String(t.match)).toBe(true);
  });

  it('fails a block on its first failing line, a failing pipeline stage and a failed background job waited for', async () => {
    await expect(runScript(['true', 'false', 'touch never'])).rejects.toThrow(/exit 1/);
    expect(fs.existsSync(path.join(work, 'never'))).toBe(false);
    await expect(runScript(['false | cat'])).rejects.toThrow(/exit 1/);
    await expect(runScript(['(sleep 0.1; exit 3) &', 'wait $!'])).rejects.toThrow(/exit 3/);
  });

  it('can use the default platform, its TAP name and its debugger port on this machine', async () => {
    // The default platform's shared memory is /dev/shm/lparlab/default: a second one on the machine is refused.
    const owner = path.join('/dev/shm/lparlab/default');
    for (const cec of fs.existsSync(owner) ? fs.readdirSync(owner) : []) {
      const file = path.join(owner, cec, 'owner.json');
      if (!fs.existsSync(file)) continue;
      const pid = (JSON.parse(fs.readFileSync(file, 'utf8')) as { pid: number }).pid;
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      expect(alive, `a default platform is running on this machine (hypervisor pid ${pid}); the README test boots its own`).toBe(false);
    }
    expect(fs.existsSync(`/sys/class/net/${README_TAP}`), `a network device ${README_TAP} exists already`).toBe(false);
  });

  blocks.forEach((block, i) => {
    it(`block ${i + 1} under "${block.heading}": ${block.lines.map(commandOf).join(' ; ')}`, { timeout: 900_000 }, async () => {
      for (const step of stepsOf(block)) {
        if (step.kind === 'not-run') continue;
        if (step.kind === 'foreground') await startForeground(step.line, step.spec);
        else await runScript(step.lines);
      }
    });
  });
});

describe('README.md command reference', () => {
  it('lists every verb with the synopsis its --help prints', () => {
    const text = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const section = text.slice(text.indexOf('## The `lparlab` command'));
    const reference = /```\n(lparlab [\s\S]*?)```/.exec(section)?.[1].trim().split('\n');
    expect(reference, 'a ``` block of lparlab lines under "The lparlab command"').toBeDefined();
    const synopses = COMMANDS.filter((c) => !c.hidden).flatMap((c) => c.usage.map((u) => `lparlab ${u}`));
    expect(reference).toEqual(synopses);
  });
});
