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
const children: ChildProcess[] = [];

function startChild(hang?: { when: 'before' | 'after'; op: TargetCall['op']; weight?: number; track?: string }): ChildProcess {
  rmSync(join(world.stateDir, 'api-url'), { force: true });
  rmSync(`${world.targetFile}.hung`, { force: true });
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/support/controller-child.ts')], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '', SLIPWAY_TEST_CHILD: JSON.stringify({ repo: world.repo.dir, stateDir: world.stateDir, targetFile: world.targetFile, token: TOKEN, ...(hang ? { hang } : {}) }) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('exit', (code, signal) => {
    if (code && code !== 0 && signal !== 'SIGKILL') process.stderr.write(`controller child exited ${code}: ${stderr}\n`);
  });
  children.push(child);
  return child;
}

function record(): ServiceRecord | undefined {
  const file = join(world.stateDir, 'environments/staging/services/web.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ServiceRecord) : undefined;
}

/** Waits for an outcome, not for a duration: the poll interval only bounds how quickly we notice. */
async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}; record: ${JSON.stringify(record()?.state)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function kill(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

async function api(method: string, path: string, body?: unknown): Promise<Response> {
  const url = await until('the API address', () => existsSync(join(world.stateDir, 'api-url')) && readFileSync(join(world.stateDir, 'api-url'), 'utf8'));
  return fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
}

export type KillPoint =
  | { name: string; hang: { when: 'before' | 'after'; op: TargetCall['op']; weight?: number; track?: string } }
  | { name: string; phase: 'Paused' | 'Analyzing' };

export function defineKillTests(killPoints: KillPoint[]): void {
  beforeEach(async () => {
  const repo = EnvRepo.create({ services: { web: { digest: A, strategy: STEPS } } });
  const stateDir = mkdtempSync(join(tmpdir(), 'slipway-kill9-'));
  world = { repo, stateDir, targetFile: join(stateDir, 'target.json') };
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
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) await kill(c);
  world.repo.cleanup();
  rmSync(world.stateDir, { recursive: true, force: true });
});


describe('a controller killed with SIGKILL mid-rollout', () => {
  describe.each(killPoints)('in phase $name', (point) => {
    it('resumes at the same step after restart, shifts traffic once per step and keeps the audit trail', async () => {
      const first = startChild('hang' in point ? point.hang : undefined);
      if ('hang' in point) {
        const where = await until('the target call to hang (or a pause before it)', () =>
          existsSync(`${world.targetFile}.hung`) ? 'hung' : record()?.state.phase === 'Paused' ? 'paused' : undefined,
        );
        if (where === 'paused') {
          expect((await api('POST', '/api/v1/rollouts/staging/web/promote', { actor: 'alice' })).status).toBe(200);
          await until('the target call to hang', () => existsSync(`${world.targetFile}.hung`));
        }
      } else {
        await until('the Paused phase', () => record()?.state.phase === 'Paused');
        if (point.phase === 'Analyzing') {
          expect((await api('POST', '/api/v1/rollouts/staging/web/promote', { actor: 'alice' })).status).toBe(200);
          await until('the Analyzing phase', () => record()?.state.phase === 'Analyzing');
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
      const done = await until('Completed', () => (record()?.state.phase === 'Completed' ? record() : undefined));
      expect(done.state.stable?.digest).toBe(B);
      expect(MemoryTarget.shifts(world.targetFile, 'staging/web')).toEqual([20, 50, 100]);

      const audit = await new FileAuditLog(join(world.stateDir, 'audit.jsonl')).list({ service: 'web' });
      const ofB = audit.filter((e) => e.digest === B);
      const count = (action: string) => ofB.filter((e) => e.action === action).length;
      expect(count('RolloutStarted')).toBe(1);
      expect(ofB.filter((e) => e.action === 'TrafficShifted').map((e) => e.data?.weight)).toEqual([20, 50, 100]);
      expect(count('Completed')).toBe(1);
      expect(new Set(audit.map((e) => e.id)).size).toBe(audit.length);
    }, 180_000);
  });
});
}
