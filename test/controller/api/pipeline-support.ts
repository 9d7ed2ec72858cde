/** Shared by the pipeline API tests: a controller to hang the API on, HTTP calls with timeouts, polling with deadlines. */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { Controller, GitEnvironmentSource, freezeCalendar } from '../../../controller/index.js';
import type { JobRecord } from '../../../controller/pipelines/index.js';
import { EnvRepo, digestOf } from '../../support/envrepo.js';
import { MemoryTarget } from '../../support/memory-target.js';
import { GitCliRevert } from '../../support/git-revert.js';
import { until } from '../../support/until.js';

export const TOKEN = 'pipeline-test-token';
export const auth = { authorization: `Bearer ${TOKEN}` };

/** A controller over a one-service environments repo; the pipeline routes need one to exist, not to do anything. */
export async function quietController(stateDir: string): Promise<{ controller: Controller; repo: EnvRepo }> {
  const repo = EnvRepo.create({ services: { web: { digest: digestOf('a') } } });
  const target = new MemoryTarget();
  const controller = new Controller({
    source: new GitEnvironmentSource({ location: repo.dir }),
    targetFor: () => target,
    verifier: { verify: async (r) => ({ ok: true, provenance: { digest: r.digest, builderId: 't', sourceRepo: 't', sourceRef: 't', sourceCommit: 't', keyName: 'ci' } }) },
    freeze: freezeCalendar({ activeWindows: () => [] }),
    analysis: { analyze: async (ctx) => ({ outcome: 'pass', summary: 'ok', slos: [], at: ctx.end.toISOString() }) },
    rollback: new GitCliRevert(repo.dir),
    stateDir,
  });
  return { controller, repo };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field with toMatchObject
export async function call(url: string, method: string, path: string, body?: unknown, headers: Record<string, string> = auth): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export const waitFor = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 45_000): Promise<T> => until(what, probe, timeoutMs, 50);

/** Polls GET /api/v1/pipelines/:id until the job has ended; returns every record seen on the way. */
export async function untilDone(url: string, id: string, timeoutMs = 45_000): Promise<{ job: JobRecord; seen: JobRecord[] }> {
  const seen: JobRecord[] = [];
  const job = await waitFor(`pipeline job ${id} to finish`, async () => {
    const { status, body } = await call(url, 'GET', `/api/v1/pipelines/${id}`);
    if (status !== 200) throw new Error(`GET answered ${status}: ${JSON.stringify(body)}`);
    seen.push(body as JobRecord);
    return ['succeeded', 'failed', 'interrupted'].includes((body as JobRecord).state) ? (body as JobRecord) : undefined;
  }, timeoutMs);
  return { job, seen };
}

const execFileAsync = promisify(execFile);
const BIN = resolve('bin/slipway.js');

/** `slipway build ... --json` as a user runs it, in its own SLIPWAY_HOME. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the CLI's JSON, checked field by field
export async function slipwayBuild(args: string[], env: Record<string, string>): Promise<{ code: number; json: any; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [BIN, 'build', ...args, '--json'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SLIPWAY_FROM_SOURCE: '1', ...env },
      timeout: 50_000,
    });
    return { code: 0, json: JSON.parse(stdout), stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, json: e.stdout ? JSON.parse(e.stdout) : undefined, stderr: e.stderr };
  }
}
