/**
 * The pipeline queue's bounds over real HTTP with real builds: concurrency 1 runs three jobs one at a time
 * (seen in the job records), and a full queue answers 429. Each build waits at its first stage until the test
 * releases it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiServer } from '../../../controller/index.js';
import { openPipelineQueue, type JobRecord, type PipelineQueue } from '../../../controller/pipelines/index.js';
import type { EnvRepo } from '../../support/envrepo.js';
import { gatedService, type GatedService } from './gated-service.js';
import { TOKEN, call, quietController, untilDone, waitFor } from './pipeline-support.js';

let tmp: string;
let service: GatedService;
let envRepo: EnvRepo;
let queue: PipelineQueue;
let api: ApiServer;
let url: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'slipway-api-pipelines-bounds-'));
  service = await gatedService(tmp);
  const made = await quietController(join(tmp, 'state'));
  envRepo = made.repo;
  const home = join(tmp, 'home');
  queue = await openPipelineQueue({ stateDir: join(tmp, 'state'), home, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, SLIPWAY_HOME: home }, limits: { concurrency: 1, maxQueued: 2 } });
  api = new ApiServer({ controller: made.controller, token: TOKEN, pipelines: queue });
  url = await api.listen();
});

afterAll(async () => {
  await api?.close();
  // Cancels any build still waiting at its gate (kills its process group).
  await queue?.close();
  envRepo?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const jobsById = async (ids: string[]): Promise<JobRecord[]> => {
  const { body } = await call(url, 'GET', '/api/v1/pipelines?limit=100');
  return ids.map((id) => (body.jobs as JobRecord[]).find((j) => j.id === id)!);
};

describe('pipelines with concurrency 1 and room for 2 waiting', () => {
  const ids: string[] = [];
  const commits: string[] = [];
  /** Every listing taken while the jobs ran: the bound must hold in each. */
  const snapshots: JobRecord[][] = [];

  it('accepts three triggers and answers the fourth 429 with a message that says why', async () => {
    for (const label of ['one', 'two', 'three']) {
      const commit = await service.commit(label);
      commits.push(commit);
      const res = await call(url, 'POST', '/api/v1/pipelines/trigger', { repo: service.repo.dir, commit, registry: `oci:${join(tmp, 'images')}` });
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
    const full = await call(url, 'POST', '/api/v1/pipelines/trigger', { repo: service.repo.dir, commit: commits[0] });
    expect(full.status).toBe(429);
    expect(full.headers.get('retry-after')).toBe('10');
    expect(full.body.error).toMatchObject({ code: 'QUEUE_FULL', queued: 2, running: 1 });
    expect(full.body.error.message).toContain('the pipeline queue is full');
  });

  it('runs them one at a time in trigger order, never two at once', async () => {
    for (let i = 0; i < 3; i++) {
      const running = await waitFor(`job ${i + 1} to wait at its gate`, async () => {
        const jobs = await jobsById(ids);
        snapshots.push(jobs);
        return jobs[i]!.stages.find((s) => s.name === 'wait')?.status === 'running' ? jobs : undefined;
      });
      expect(running.map((j) => j.state)).toEqual(ids.map((_, k) => (k < i ? 'succeeded' : k === i ? 'running' : 'queued')));
      // Live: the stage list is known up front; the build stage is still pending.
      expect(running[i]!.stages).toMatchObject([{ name: 'wait', status: 'running' }, { name: 'build', status: 'pending' }]);
      service.release(commits[i]!);
      await untilDone(url, ids[i]!);
    }
    const done = await jobsById(ids);
    expect(done.map((j) => j.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    for (const snapshot of snapshots) expect(snapshot.filter((j) => j.state === 'running').length).toBeLessThanOrEqual(1);
    // From the records themselves: each job started after the one before it had finished.
    for (let i = 1; i < done.length; i++) expect(done[i]!.startedAt! >= done[i - 1]!.finishedAt!).toBe(true);
    expect(new Set(done.map((j) => j.result!.digest)).size).toBe(3);
    for (const job of done) expect(job.stages.map((s) => `${s.name}:${s.status}`)).toEqual(['wait:passed', 'build:passed']);
  });

  it('accepts triggers again once the queue has room', async () => {
    const res = await call(url, 'POST', '/api/v1/pipelines/trigger', { repo: service.repo.dir, commit: commits[0], registry: `oci:${join(tmp, 'images')}` });
    expect(res.status).toBe(202);
    const { job } = await untilDone(url, res.body.id);
    expect(job.result).toMatchObject({ cacheHit: true });
  });

  it('counts jobs by state, refusals and durations on /metrics', async () => {
    const res = await call(url, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.body).toContain('slipway_pipeline_jobs{state="succeeded"} 4');
    expect(res.body).toContain('slipway_pipeline_jobs{state="running"} 0');
    expect(res.body).toContain('slipway_pipeline_triggers_refused_total{reason="queue_full"} 1');
    expect(res.body).toContain('slipway_pipeline_job_duration_seconds_count{state="succeeded",cache="miss"} 3');
    expect(res.body).toContain('slipway_pipeline_job_duration_seconds_count{state="succeeded",cache="hit"} 1');
    // The controller's own metrics are still there.
    expect(res.body).toContain('slipway_reconcile_duration_seconds');
  });

  describe('when jobs are cancelled', () => {
    it('takes a queued one out and kills a running one mid-stage; an ended one answers 409', async () => {
      const running = await service.commit('to-kill');
      const waiting = await service.commit('never-run');
      const first = await call(url, 'POST', '/api/v1/pipelines/trigger', { repo: service.repo.dir, commit: running, registry: `oci:${join(tmp, 'images')}` });
      const second = await call(url, 'POST', '/api/v1/pipelines/trigger', { repo: service.repo.dir, commit: waiting, registry: `oci:${join(tmp, 'images')}` });
      await waitFor('the job to wait at its gate', async () => (await jobsById([first.body.id]))[0]!.stages[0]?.status === 'running');

      expect((await call(url, 'POST', `/api/v1/pipelines/${second.body.id}/cancel`, {}, {})).status).toBe(401);
      const dequeued = await call(url, 'POST', `/api/v1/pipelines/${second.body.id}/cancel`, { actor: 'pat' });
      expect(dequeued.status).toBe(200);
      expect(dequeued.body).toMatchObject({ state: 'cancelled', error: { code: 'CANCELLED', message: expect.stringContaining('cancelled by pat before it started') } });

      const killed = await call(url, 'POST', `/api/v1/pipelines/${first.body.id}/cancel`, { actor: 'sam' });
      expect(killed.status).toBe(200);
      expect(killed.body).toMatchObject({
        state: 'cancelled',
        stages: [
          { name: 'wait', status: 'failed', reason: 'the build was cancelled' },
          { name: 'build', status: 'skipped' },
        ],
      });
      expect(killed.body.result).toBeUndefined();

      const again = await call(url, 'POST', `/api/v1/pipelines/${first.body.id}/cancel`, {});
      expect(again.status).toBe(409);
      expect(again.body.error.message).toContain('already cancelled');
      expect((await call(url, 'POST', '/api/v1/pipelines/20260101-000000-abcdef/cancel', {})).status).toBe(404);
      expect((await call(url, 'POST', `/api/v1/pipelines/${first.body.id}/cancel`, { reason: 'x' })).body.error).toMatchObject({ field: 'reason' });
    });
  });
});
