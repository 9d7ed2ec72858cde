/**
 * The controller is killed with SIGKILL at each rollout phase, restarted, and must finish the rollout from
 * the step it was at: no traffic shift twice, no step skipped, the audit trail whole.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, GitEnvironmentSource, freezeCalendar, FileAuditLog } from '../../../controller/index.js';
import type { ServiceRecord } from '../../../controller/reconcile/index.js';
import { EnvRepo, digestOf } from '../../support/envrepo.js';
import { MemoryTarget, type TargetCall } from '../../support/memory-target.js';
import { GitCliRevert } from '../../support/git-revert.js';
import type { Strategy } from '../../../schemas/index.js';

const A = digestOf('a');
const B = digestOf('b');
const STEPS: Strategy = { canary: { steps: [{ setWeight: 20 }, { pause: {} }, { analysis: { interval: '1s' } }, { setWeight: 50 }, { setWeight: 100 }] } };
const TOKEN = 'kill9-test-token';
const ROOT = join(import.meta.dirname, '..', '..', '..');

interface World {
  repo: EnvRepo;
  stateDir: string;
  targetFile: string;
}

let world: World;
const trace: string[] = [];
let t0 = Date.now();
const stamp = () => `+${((Date.now() - t0) / 1000).toFixed(2)}s`;
const note = (what: string) => trace.push(`${stamp()} test: ${what}`);
/** Every wait in a test shares this deadline, so a stuck test fails with its trace, not with jest's timeout. */
let testDeadline = Date.now();
const TEST_TIMEOUT_MS = 240_000;
const remaining = () => Math.max(1_000, testDeadline - Date.now());
const withTrace = (message: string) => `${message}\n--- what happened (test and controller log) ---\n${trace.join('\n')}`;
const children: ChildProcess[] = [];
/**
 * The next controller process, started ahead of need: it loads its modules (seconds through tsx on a loaded
 * machine) while the test is busy elsewhere, and touches nothing until startChild hands it its configuration.
 * It belongs to no test until then, so it outlives afterEach (afterAll ends the last one).
 */
let standby: ChildProcess | undefined;
let spawned = 0;
let started = 0;
/** How many controller starts this file makes (two per kill point): no standby is spawned past the last. */
let plannedStarts = 0;

function spawnStandby(): ChildProcess {
  const child = spawn(process.execPath, ['--import', join(ROOT, 'test/support/native-preload.mjs'), '--import', 'tsx', join(ROOT, 'test/support/controller-child.ts')], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  const n = spawned++;
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const line of d.toString().split('\n').filter(Boolean)) trace.push(`${stamp()} child${n}: ${line}`);
  });
  child.on('exit', (code, signal) => {
    if (code && code !== 0 && signal !== 'SIGKILL') process.stderr.write(`controller child exited ${code}: ${stderr}\n`);
  });
  // A standby killed before it read its line must not fail the test with EPIPE.
  child.stdin!.on('error', () => undefined);
  return child;
}

/** Starts the standby process (or a fresh one) as a controller on the test's world. */
function startChild(hang?: { when: 'before' | 'after'; op: TargetCall['op']; weight?: number; track?: string }): ChildProcess {
  rmSync(join(world.stateDir, 'api-url'), { force: true });
  rmSync(`${world.targetFile}.hung`, { force: true });
  const child = standby && standby.exitCode === null && standby.signalCode === null ? standby : spawnStandby();
  children.push(child);
  started += 1;
  standby = started < plannedStarts ? spawnStandby() : undefined;
  const config = { repo: world.repo.dir, stateDir: world.stateDir, targetFile: world.targetFile, token: TOKEN, ...(hang ? { hang } : {}) };
  child.stdin!.end(`${JSON.stringify(config)}\n`);
  note(`started child pid ${child.pid}${hang ? ` (hangs ${hang.when} ${hang.op})` : ''}`);
  return child;
}

function record(): ServiceRecord | undefined {
  const file = join(world.stateDir, 'environments/staging/services/web.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ServiceRecord) : undefined;
}

/**
 * A rollout that really reached a phase: the record is written ahead of the target calls that carry a
 * transition out (phase already new, intents still pending), so a pending record has not arrived yet.
 */
function settledIn(phase: string): ServiceRecord | undefined {
  const r = record();
  return r && r.state.phase === phase && !r.pending ? r : undefined;
}

/** Waits for an outcome, not for a duration: the poll interval only bounds how quickly we notice. */
async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + Math.min(timeoutMs, remaining());
  for (;;) {
    const value = probe();
    if (value) {
      note(`got ${what}`);
      return value;
    }
    if (Date.now() > deadline) throw new Error(withTrace(`gave up waiting for ${what}; record: ${JSON.stringify(record()?.state)}`));
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function kill(child: ChildProcess): Promise<void> {
  note(`killing child (exitCode ${child.exitCode}, signal ${child.signalCode})`);
  if (child.exitCode !== null || child.signalCode !== null) return;
  let timer: NodeJS.Timeout | undefined;
  const exited = new Promise<boolean>((r) => child.once('exit', () => r(true)));
  child.kill('SIGKILL');
  const gone = await Promise.race([exited, new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 20_000)))]);
  clearTimeout(timer);
  if (!gone) throw new Error(withTrace(`the controller child (pid ${child.pid}) did not exit within 20 s of SIGKILL`));
  note('child exited');
}

async function api(method: string, path: string, body?: unknown): Promise<Response> {
  const url = await until('the API address', () => existsSync(join(world.stateDir, 'api-url')) && readFileSync(join(world.stateDir, 'api-url'), 'utf8'));
  note(`${method} ${path}`);
  const res = await fetch(`${url}${path}`, {
    method,
    signal: AbortSignal.timeout(Math.min(60_000, remaining())),
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  }).catch((err: unknown) => {
    throw new Error(withTrace(`${method} ${path} got no answer: ${(err as Error).message}; record: ${JSON.stringify(record()?.state)}`));
  });
  note(`${method} ${path} -> ${res.status}`);
  return res;
}

export type KillPoint =
  | { name: string; hang: { when: 'before' | 'after'; op: TargetCall['op']; weight?: number; track?: string } }
  | { name: string; phase: 'Paused' | 'Analyzing' };

export function defineKillTests(killPoints: KillPoint[]): void {
  plannedStarts = killPoints.length * 2;
  afterAll(async () => {
    if (standby) await kill(standby);
    standby = undefined;
  });

  beforeEach(async () => {
  t0 = Date.now();
  testDeadline = t0 + TEST_TIMEOUT_MS - 15_000;
  const repo = EnvRepo.create({ services: { web: { digest: A, strategy: STEPS } } });
  const stateDir = mkdtempSync(join(tmpdir(), 'slipway-kill9-'));
  world = { repo, stateDir, targetFile: join(stateDir, 'target.json') };
  standby ??= spawnStandby();
  // A stable version first, deployed by an in-process controller on the same state and target.
  const target = new MemoryTarget({ file: world.targetFile });
  const first = new Controller({
    source: new GitEnvironmentSource({ location: repo.dir }),
    targetFor: () => target,
    verifier: { verify: async (r) => ({ ok: true, provenance: { digest: r.digest, builderId: 't', sourceRepo: 't', sourceRef: 't', sourceCommit: 't', keyName: 'ci' } }) },
    freeze: freezeCalendar({ activeWindows: () => [] }),
    analysis: { analyze: async () => ({ outcome: 'pass', summary: 'ok', slos: [], at: new Date().toISOString() }) },
    rollback: new GitCliRevert(repo.dir),
    stateDir,
  });
  await first.once();
  expect(record()?.state.phase).toBe('Completed');
  repo.setService('staging', 'web', { digest: B, strategy: STEPS });
  repo.commit('web to B');
});

afterEach(async () => {
  if (process.env.KILL9_TRACE) {
    const calls = existsSync(`${world.targetFile}.calls.jsonl`) ? readFileSync(`${world.targetFile}.calls.jsonl`, 'utf8') : '';
    process.stderr.write(`${trace.join('\n')}\nrecord: ${JSON.stringify(record())}\ncalls:\n${calls}\n`);
  }
  trace.length = 0;
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) await kill(c);
  world.repo.cleanup();
  rmSync(world.stateDir, { recursive: true, force: true });
});


describe('a controller killed with SIGKILL mid-rollout', () => {
  describe.each(killPoints)('in phase $name', (point) => {
    it('resumes at the same step after restart, shifts traffic once per step and keeps the audit trail', async () => {
      // startChild leaves the next process loading while this one runs; it reads nothing until the kill below has landed.
      const first = startChild('hang' in point ? point.hang : undefined);
      if ('hang' in point) {
        const where = await until('the target call to hang (or a pause before it)', () =>
          existsSync(`${world.targetFile}.hung`) ? 'hung' : settledIn('Paused') ? 'paused' : undefined,
        );
        if (where === 'paused') {
          expect((await api('POST', '/api/v1/rollouts/staging/web/promote', { actor: 'alice' })).status).toBe(200);
          await until('the target call to hang', () => existsSync(`${world.targetFile}.hung`));
        }
      } else {
        await until('the Paused phase', () => settledIn('Paused'));
        if (point.phase === 'Analyzing') {
          expect((await api('POST', '/api/v1/rollouts/staging/web/promote', { actor: 'alice' })).status).toBe(200);
          await until('the Analyzing phase', () => settledIn('Analyzing'));
        }
      }
      await kill(first);
      const atKill = record()!;
      expect(atKill.state.desired?.digest).toBe(B);

      startChild();
      const resumed = await until('the restarted controller to settle', () => {
        const r = record();
        return r && (r.state.phase === 'Paused' || r.state.phase === 'Completed') && !r.pending ? r : undefined;
      });
      // It never went back to an earlier step than the one it was killed at.
      expect(resumed.state.stepIndex).toBeGreaterThanOrEqual(atKill.state.stepIndex);
      expect(resumed.state.generation).toBe(atKill.state.generation);
      if (resumed.state.phase === 'Paused') {
        expect(resumed.state.stepIndex).toBe(1);
        const res = await api('POST', '/api/v1/rollouts/staging/web/promote', { actor: 'alice' });
        expect(res.status).toBe(200);
      }
      const done = await until('Completed', () => settledIn('Completed'));
      expect(done.state.stable?.digest).toBe(B);
      expect(MemoryTarget.shifts(world.targetFile, 'staging/web')).toEqual([20, 50, 100]);

      const audit = await new FileAuditLog(join(world.stateDir, 'audit.jsonl')).list({ service: 'web' });
      const ofB = audit.filter((e) => e.digest === B);
      const count = (action: string) => ofB.filter((e) => e.action === action).length;
      expect(count('RolloutStarted')).toBe(1);
      expect(ofB.filter((e) => e.action === 'TrafficShifted').map((e) => e.data?.weight)).toEqual([20, 50, 100]);
      expect(count('Completed')).toBe(1);
      expect(new Set(audit.map((e) => e.id)).size).toBe(audit.length);
    }, TEST_TIMEOUT_MS);
  });
});
}
