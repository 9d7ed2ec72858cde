/**
 * The pipeline job queue with the real file store and a runner the test drives: each job runs until the test
 * finishes it, so scheduling is observed through the job records, never through timing.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileJobStore, PipelineQueue, newJob, toStart, admit, redacted, type JobEvent, type JobOutcome, type JobRecord, type JobRunner, type PipelineRequest } from '../../../controller/pipelines/index.js';
import { isSlipwayError } from '../../../lib/errors.js';

interface Running {
  request: PipelineRequest;
  signal: AbortSignal;
  report(event: JobEvent): void;
  finish(outcome: JobOutcome): void;
}

/** A runner whose jobs wait for the test: `runs` lists the jobs started, in order. */
function controlledRunner(): JobRunner & { runs: Running[]; commits: { commit?: string; branch?: string }[] } {
  const runs: Running[] = [];
  const commits: { commit?: string; branch?: string }[] = [];
  return {
    runs,
    commits,
    async preflight(request) {
      if (request.repo === '/no/such/repo') return { ok: false, field: 'repo', message: 'field "repo": /no/such/repo is not a git repository' };
      return { ok: true, commit: 'f'.repeat(40), branch: 'main', ...(request.repo === '/planned' ? { stages: ['lint', 'test'] } : {}) };
    },
    run(request, ctx) {
      return new Promise<JobOutcome>((resolve) => {
        const run = { request, signal: ctx.signal, report: ctx.report, finish: resolve };
        commits.push({ commit: ctx.commit, branch: ctx.branch });
        ctx.signal.addEventListener('abort', () => resolve({ state: 'failed', error: { code: 'BUILD_CANCELLED', message: 'cancelled' } }));
        runs.push(run);
      });
    },
  } satisfies JobRunner & { runs: Running[]; commits: { commit?: string; branch?: string }[] };
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const success = (digest: string): JobOutcome => ({
  state: 'succeeded',
  result: { imageRef: `oci:/x@${digest}`, repository: 'oci:/x', digest, cacheHit: false, commit: 'c'.repeat(40), signed: false, unsignedReason: 'no key' },
});
const digest = (c: string) => `sha256:${c.repeat(64)}`;

let dir: string;
const queues: PipelineQueue[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'slipway-pipelines-'));
});
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
  rmSync(dir, { recursive: true, force: true });
});

async function open(runner: JobRunner, limits: { concurrency?: number; maxQueued?: number; keep?: number } = {}, storeDir = dir): Promise<PipelineQueue> {
  const queue = await PipelineQueue.open({ store: new FileJobStore(storeDir), runner, limits });
  queues.push(queue);
  return queue;
}

const onDisk = (id: string): JobRecord => JSON.parse(readFileSync(join(dir, `${id}.json`), 'utf8')) as JobRecord;
const states = (queue: PipelineQueue, ids: string[]) => ids.map((id) => queue.get(id)!.state);

describe('the pipeline job queue', () => {
  describe('with concurrency 1 and three jobs', () => {
    it('runs them one after another in trigger order, never two at once', async () => {
      const runner = controlledRunner();
      const queue = await open(runner, { concurrency: 1 });
      const ids: string[] = [];
      for (const n of [1, 2, 3]) ids.push((await queue.trigger({ repo: `/repo/${n}` })).id);
      await waitFor('the first job to start', () => runner.runs.length === 1);
      expect(states(queue, ids)).toEqual(['running', 'queued', 'queued']);

      runner.runs[0]!.finish(success(digest('1')));
      await waitFor('the second job to start', () => runner.runs.length === 2);
      expect(states(queue, ids)).toEqual(['succeeded', 'running', 'queued']);
      expect(runner.runs[1]!.request.repo).toBe('/repo/2');

      runner.runs[1]!.finish({ state: 'failed', error: { code: 'STAGE_FAILED', message: 'boom', stage: 'test' } });
      await waitFor('the third job to start', () => runner.runs.length === 3);
      expect(states(queue, ids)).toEqual(['succeeded', 'failed', 'running']);
      runner.runs[2]!.finish(success(digest('3')));
      await queue.idle();
      expect(states(queue, ids)).toEqual(['succeeded', 'failed', 'succeeded']);
      // Each started only after the one before it finished.
      const records = ids.map((id) => queue.get(id)!);
      for (let i = 1; i < records.length; i++) expect(records[i]!.startedAt! >= records[i - 1]!.finishedAt!).toBe(true);
    });
  });

  describe('with concurrency 2', () => {
    it('starts two jobs at once and the third when one of them ends', async () => {
      const runner = controlledRunner();
      const queue = await open(runner, { concurrency: 2 });
      const ids = [(await queue.trigger({ repo: '/a' })).id, (await queue.trigger({ repo: '/b' })).id, (await queue.trigger({ repo: '/c' })).id];
      await waitFor('two jobs to start', () => runner.runs.length === 2);
      expect(states(queue, ids)).toEqual(['running', 'running', 'queued']);
      runner.runs[1]!.finish(success(digest('b')));
      await waitFor('the third job to start', () => runner.runs.length === 3);
      expect(states(queue, ids)).toEqual(['running', 'succeeded', 'running']);
    });
  });

  describe('when the queue is full', () => {
    it('refuses the trigger with QUEUE_FULL and says how many wait and run', async () => {
      const runner = controlledRunner();
      const queue = await open(runner, { concurrency: 1, maxQueued: 1 });
      await queue.trigger({ repo: '/a' });
      await queue.trigger({ repo: '/b' });
      const refused = await queue.trigger({ repo: '/c' }).catch((err: unknown) => err);
      expect(isSlipwayError(refused) && refused.code).toBe('QUEUE_FULL');
      expect((refused as Error).message).toMatch(/1 job\(s\) waiting .* 1 running \(concurrency 1\)/);
      expect(queue.list().length).toBe(2);
    });
  });

  describe('when the preflight pins the commit', () => {
    it('records the commit, the branch and every stage as pending before the job starts, and runs that commit', async () => {
      const runner = controlledRunner();
      const queue = await open(runner, { concurrency: 1 });
      await queue.trigger({ repo: '/first' });
      const job = await queue.trigger({ repo: '/planned', commit: 'HEAD' });
      expect(job).toMatchObject({ state: 'queued', commit: 'f'.repeat(40), branch: 'main', stages: [{ name: 'lint', status: 'pending' }, { name: 'test', status: 'pending' }] });
      expect(onDisk(job.id).stages).toHaveLength(2);
      runner.runs[0]!.finish(success(digest('1')));
      await waitFor('the second job to start', () => runner.runs.length === 2);
      expect(runner.commits[1]).toEqual({ commit: 'f'.repeat(40), branch: 'main' });
    });
  });

  describe('when the runner refuses a request before queueing', () => {
    it('throws INVALID_REQUEST naming the field and records nothing', async () => {
      const queue = await open(controlledRunner());
      const refused = await queue.trigger({ repo: '/no/such/repo' }).catch((err: unknown) => err);
      expect(isSlipwayError(refused) && refused.code).toBe('INVALID_REQUEST');
      expect(isSlipwayError(refused) && refused.data.field).toBe('repo');
      expect(queue.list()).toEqual([]);
    });
  });

  describe('while a job runs', () => {
    it('writes every stage update to its record on disk as it happens', async () => {
      const runner = controlledRunner();
      const queue = await open(runner);
      const { id } = await queue.trigger({ repo: '/svc', commit: 'HEAD' });
      expect(onDisk(id).state).toMatch(/queued|running/);
      await waitFor('the job to start', () => runner.runs.length === 1);
      const run = runner.runs[0]!;
      run.report({ type: 'resolved', commit: 'a'.repeat(40), branch: 'main' });
      run.report({ type: 'planned', stages: ['lint', 'test', 'build'] });
      run.report({ type: 'stage-started', stage: 'lint' });
      await waitFor('lint to show as running on disk', () => onDisk(id).stages[0]?.status === 'running');
      expect(onDisk(id)).toMatchObject({ state: 'running', step: 'stages', commit: 'a'.repeat(40), stages: [{ name: 'lint' }, { name: 'test', status: 'pending' }, { name: 'build', status: 'pending' }] });

      run.report({ type: 'stage-finished', stage: { name: 'lint', status: 'passed', exitCode: 0, durationMs: 12, logPath: '/logs/01-lint.log' } });
      run.report({ type: 'stage-started', stage: 'test', shards: 2 });
      run.report({ type: 'stage-finished', stage: { name: 'test', status: 'failed', exitCode: 3, durationMs: 40, logPath: '/logs/02-test.log' } });
      run.finish({ state: 'failed', error: { code: 'STAGE_FAILED', message: 'stage "test" failed with exit code 3', stage: 'test', logTail: ['boom'] } });
      await queue.idle();
      await waitFor('the final record on disk', () => onDisk(id).state === 'failed');
      expect(onDisk(id)).toMatchObject({
        state: 'failed',
        error: { code: 'STAGE_FAILED', stage: 'test', logTail: ['boom'] },
        stages: [
          { name: 'lint', status: 'passed', exitCode: 0, durationMs: 12, logPath: '/logs/01-lint.log' },
          { name: 'test', status: 'failed', exitCode: 3, shards: 2 },
          { name: 'build', status: 'skipped', reason: 'the job failed: STAGE_FAILED' },
        ],
      });
    });

    it('records a runner that throws as a failed job', async () => {
      const queue = await open({ run: () => Promise.reject(new Error('disk full')) });
      const { id } = await queue.trigger({ repo: '/svc' });
      await queue.idle();
      expect(queue.get(id)).toMatchObject({ state: 'failed', error: { code: 'INTERNAL', message: 'disk full' } });
    });
  });

  describe('after the controller dies with a job running and one queued', () => {
    it('reports the running one as interrupted and runs the queued one', async () => {
      const first = controlledRunner();
      const dead = await open(first, { concurrency: 1 });
      const running = await dead.trigger({ repo: '/a' });
      const queued = await dead.trigger({ repo: '/b' });
      await waitFor('the first job to start', () => first.runs.length === 1);
      first.runs[0]!.report({ type: 'planned', stages: ['lint', 'test'] });
      first.runs[0]!.report({ type: 'stage-started', stage: 'lint' });
      await waitFor('lint running on disk', () => onDisk(running.id).stages[0]?.status === 'running');
      // The old queue is simply abandoned, as a SIGKILL would leave it; a new one opens the same records.
      queues.splice(queues.indexOf(dead), 1);

      const second = controlledRunner();
      const restarted = await open(second, { concurrency: 1 });
      expect(restarted.get(running.id)).toMatchObject({
        state: 'interrupted',
        error: { code: 'INTERRUPTED' },
        stages: [
          { name: 'lint', status: 'failed', reason: 'the controller stopped' },
          { name: 'test', status: 'skipped' },
        ],
      });
      expect(onDisk(running.id).state).toBe('interrupted');
      await waitFor('the queued job to run after the restart', () => second.runs.length === 1);
      expect(second.runs[0]!.request.repo).toBe('/b');
      expect(restarted.get(queued.id)!.state).toBe('running');
      first.runs[0]!.finish(success(digest('a')));
      await dead.close();
    });

    it('reads a record a dead controller left running as interrupted', async () => {
      mkdirSync(dir, { recursive: true });
      const left: JobRecord = { ...newJob('20260101-000000-abcdef', { repo: '/svc' }, new Date('2026-01-01T00:00:00Z')), state: 'running', step: 'image', startedAt: '2026-01-01T00:00:01Z' };
      writeFileSync(join(dir, `${left.id}.json`), JSON.stringify(left));
      writeFileSync(join(dir, 'garbage.json'), '{ not json');
      const queue = await open(controlledRunner());
      expect(queue.get(left.id)).toMatchObject({ state: 'interrupted', error: { code: 'INTERRUPTED', message: expect.stringContaining('step image') } });
      expect(queue.list().map((j) => j.id)).toEqual([left.id]);
    });
  });

  describe('when a job is cancelled', () => {
    it('takes a queued one out of the queue and stops a running one, recording who asked', async () => {
      const runner = controlledRunner();
      const queue = await open(runner, { concurrency: 1 });
      const running = await queue.trigger({ repo: '/planned' });
      const queued = await queue.trigger({ repo: '/planned' });
      await waitFor('the first job to start', () => runner.runs.length === 1);
      runner.runs[0]!.report({ type: 'stage-started', stage: 'lint' });

      expect(await queue.cancel(queued.id, 'pat')).toMatchObject({
        state: 'cancelled',
        error: { code: 'CANCELLED', message: expect.stringContaining('cancelled by pat before it started') },
        stages: [{ name: 'lint', status: 'skipped' }, { name: 'test', status: 'skipped' }],
      });
      expect(onDisk(queued.id).state).toBe('cancelled');

      const stopped = await queue.cancel(running.id, 'sam');
      expect(runner.runs[0]!.signal.aborted).toBe(true);
      expect(stopped).toMatchObject({ state: 'cancelled', error: { message: expect.stringContaining('cancelled by sam while it ran') } });
      expect(onDisk(running.id).state).toBe('cancelled');
      // The cancelled queued job never ran.
      expect(runner.runs).toHaveLength(1);
      await queue.idle();
    });

    it('refuses to cancel a job that has ended, and knows no unknown id', async () => {
      const queue = await open({ run: async () => success(digest('1')) });
      const { id } = await queue.trigger({ repo: '/r' });
      await queue.idle();
      const refused = await queue.cancel(id).catch((err: unknown) => err);
      expect(isSlipwayError(refused) && refused.code).toBe('ALREADY_FINISHED');
      expect(await queue.cancel('nope')).toBeUndefined();
    });
  });

  describe('when the controller stops', () => {
    it('cancels running builds and records them as interrupted', async () => {
      const runner = controlledRunner();
      const queue = await open(runner);
      const { id } = await queue.trigger({ repo: '/a' });
      await waitFor('the job to start', () => runner.runs.length === 1);
      await queue.close();
      expect(runner.runs[0]!.signal.aborted).toBe(true);
      expect(onDisk(id).state).toBe('interrupted');
      const refused = await queue.trigger({ repo: '/b' }).catch((err: unknown) => err);
      expect(isSlipwayError(refused) && refused.code).toBe('SHUTTING_DOWN');
    });
  });

  describe('with more finished jobs than it keeps', () => {
    it('forgets the oldest finished ones, on disk too', async () => {
      let n = 0;
      const queue = await open({ run: async () => success(digest(String(++n % 10))) }, { keep: 2, concurrency: 1 });
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        ids.push((await queue.trigger({ repo: `/r${i}` })).id);
        await queue.idle();
      }
      await waitFor('old records to go', () => queue.list().length === 2);
      expect(queue.list().map((j) => j.id)).toEqual([ids[3], ids[2]]);
      expect(() => onDisk(ids[0]!)).toThrow(/ENOENT/);
    });
  });
});

describe('the scheduling core', () => {
  const at = new Date('2026-01-01T00:00:00Z');
  const job = (id: string, state: JobRecord['state'], queuedAt = at) => ({ ...newJob(id, { repo: '/r' }, queuedAt), state });

  it.each([
    ['starts nothing when the slots are taken', [job('a', 'running'), job('b', 'queued')], 1, []],
    ['fills free slots first-come first-served', [job('b', 'queued', new Date('2026-01-01T00:00:02Z')), job('a', 'queued', new Date('2026-01-01T00:00:01Z')), job('c', 'queued', new Date('2026-01-01T00:00:03Z'))], 2, ['a', 'b']],
    ['ignores finished jobs', [job('a', 'succeeded'), job('b', 'failed'), job('c', 'interrupted'), job('d', 'queued')], 1, ['d']],
  ])('%s', (_name, jobs, concurrency, expected) => {
    expect(toStart(jobs, concurrency)).toEqual(expected);
  });

  it.each([
    ['admits while fewer than maxQueued wait', [job('a', 'running')], 1, 1, true],
    ['refuses when maxQueued wait', [job('a', 'running'), job('b', 'queued')], 1, 1, false],
    ['admits straight to a free slot even with maxQueued 0', [], 1, 0, true],
  ])('%s', (_name, jobs, concurrency, maxQueued, ok) => {
    expect(admit(jobs, { concurrency, maxQueued }).ok).toBe(ok);
  });

  it.each([
    ['https://bot:tok@git.example/envs.git', 'https://***@git.example/envs.git'],
    ['https://tok@git.example/envs.git', 'https://***@git.example/envs.git'],
    ['https://git.example/envs.git', 'https://git.example/envs.git'],
    ['/srv/envs', '/srv/envs'],
  ])('shows envs %s as %s', (envs, shown) => {
    const job = newJob('x', { repo: '/r', envs }, at);
    expect(redacted(job).request.envs).toBe(shown);
    expect(job.request.envs).toBe(envs);
  });
});
