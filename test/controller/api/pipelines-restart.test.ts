/**
 * `slipway controller` killed with SIGKILL while a pipeline job builds and another waits: after a restart the
 * API still answers for both, the running one reported `interrupted` (not lost, not silently re-run), the
 * waiting one run to the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { JobRecord } from '../../../controller/pipelines/index.js';
import { EnvRepo } from '../../support/envrepo.js';
import { gatedService, type GatedService } from './gated-service.js';
import { TOKEN, call, untilDone, waitFor } from './pipeline-support.js';

const BIN = resolve('bin/slipway.js');
const PRELOAD = resolve('test/support/native-preload.mjs');

let tmp: string;
let home: string;
let service: GatedService;
let envRepo: EnvRepo;
const children: { child: ChildProcess; exited: Promise<unknown> }[] = [];
const commits: string[] = [];

let firstStart: Promise<Controller>;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'slipway-pipelines-restart-'));
  home = join(tmp, 'home');
  envRepo = EnvRepo.create({ services: {} });
  // The first controller loads (seconds from source on a loaded machine) while the service repo is made.
  firstStart = startController();
  firstStart.catch(() => undefined);
  service = await gatedService(tmp);
});

/** Waits for a controller to exit, for at most `ms`: a process that never goes fails with what was awaited. */
async function exitOf(entry: { child: ChildProcess; exited: Promise<unknown> }, what: string, ms = 30_000): Promise<void> {
  if (entry.child.exitCode !== null || entry.child.signalCode !== null) return;
  let timer: NodeJS.Timeout | undefined;
  const gone = await Promise.race([entry.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  if (!gone) throw new Error(`slipway controller (pid ${entry.child.pid}) did not exit within ${ms} ms of ${what}`);
}

afterAll(async () => {
  for (const entry of children) {
    if (entry.child.exitCode === null && entry.child.signalCode === null) {
      entry.child.kill('SIGKILL');
      await exitOf(entry, 'SIGKILL');
    }
  }
  // Builds a killed controller left behind wait at their gates: let them end.
  for (const commit of commits) service?.release(commit);
  envRepo?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Starts `slipway controller` and returns the API address it wrote to $SLIPWAY_HOME/controller/endpoint. */
interface Controller {
  child: ChildProcess;
  exited: Promise<unknown>;
  url: string;
}

async function startController(): Promise<Controller> {
  const endpoint = join(home, 'controller', 'endpoint');
  rmSync(endpoint, { force: true });
  const child = spawn(
    process.execPath,
    // native-preload: the Kubernetes client loads without tsx's hooks (the same code runs, with less CPU; see the file).
    ['--import', PRELOAD, BIN, 'controller', '--repo', envRepo.dir, '--port', '0', '--pipeline-concurrency', '1', '--schedule', '0 0 1 1 *'],
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, SLIPWAY_HOME: home, SLIPWAY_FROM_SOURCE: '1', SLIPWAY_CONTROLLER_TOKEN: TOKEN, SLIPWAY_WEBHOOK_SECRET: 'unused' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise((r) => child.once('exit', r));
  children.push({ child, exited });
  const url = await waitFor(`slipway controller to write ${endpoint}`, async () => {
    if (child.exitCode !== null) throw new Error(`slipway controller exited ${child.exitCode}: ${stderr}`);
    return existsSync(endpoint) ? readFileSync(endpoint, 'utf8').trim() : undefined;
  }, 90_000);
  return { child, exited, url };
}

describe('pipeline jobs when the controller is killed mid-build', () => {
  it('are reported after the restart: the running one interrupted, the queued one run', async () => {
    const first = await firstStart;
    const ids: string[] = [];
    for (const label of ['killed', 'waiting']) {
      const commit = await service.commit(label);
      commits.push(commit);
      const res = await call(first.url, 'POST', '/api/v1/pipelines/trigger', { repo: service.repo.dir, commit, registry: `oci:${join(tmp, 'images')}` });
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
    await waitFor('the first job to wait at its gate', async () => {
      const { body } = await call(first.url, 'GET', `/api/v1/pipelines/${ids[0]}`);
      return (body as JobRecord).stages.find((s) => s.name === 'wait')?.status === 'running';
    });
    // The kill lands once the record on disk says so too (the API answers from memory, a write may be in flight).
    const record = join(home, 'controller', 'pipelines', `${ids[0]}.json`);
    await waitFor(`${record} to show the wait stage running`, async () => (JSON.parse(readFileSync(record, 'utf8')) as JobRecord).stages[0]?.status === 'running');
    expect((await call(first.url, 'GET', `/api/v1/pipelines/${ids[1]}`)).body.state).toBe('queued');

    first.child.kill('SIGKILL');
    await exitOf(first, 'SIGKILL');
    service.release(commits[0]!);

    const second = await startController();
    const interrupted = (await call(second.url, 'GET', `/api/v1/pipelines/${ids[0]}`)).body as JobRecord;
    expect(interrupted).toMatchObject({
      state: 'interrupted',
      commit: commits[0],
      error: { code: 'INTERRUPTED', message: expect.stringContaining('the controller stopped') },
      stages: [
        { name: 'wait', status: 'failed', reason: 'the controller stopped' },
        { name: 'build', status: 'skipped' },
      ],
    });
    expect(interrupted.result).toBeUndefined();

    service.release(commits[1]!);
    const { job } = await untilDone(second.url, ids[1]!);
    expect(job).toMatchObject({ state: 'succeeded', commit: commits[1], result: { cacheHit: false, digest: expect.stringMatching(/^sha256:[a-f0-9]{64}$/) } });
    const listed = (await call(second.url, 'GET', '/api/v1/pipelines')).body.jobs as JobRecord[];
    expect(listed.map((j) => `${j.id}:${j.state}`)).toEqual([`${ids[1]}:succeeded`, `${ids[0]}:interrupted`]);

    second.child.kill('SIGTERM');
    await exitOf(second, 'SIGTERM (a graceful stop)');
    // Two controller start-ups (each loads the whole controller graph from source) on a loaded machine.
  }, 180_000);
});
