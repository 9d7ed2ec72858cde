/**
 * The job queue's decisions as plain functions: admit a trigger or refuse it, which queued jobs start now,
 * how a runner's event changes a record, how a job ends, and what a restart makes of records it finds.
 * No IO and no clock of its own: `now` is passed in.
 */
import { completed, type JobEvent, type JobFailure, type JobOutcome, type JobRecord, type PipelineRequest, type QueueLimits, type StageRecord } from './types.js';

/**
 * A queued job. `pinned` is what the request's ref named when it was accepted: the commit (and branch) the job
 * will build, and the stages of the pipeline there, listed as pending.
 */
export function newJob(id: string, request: PipelineRequest, now: Date, pinned?: { commit: string; branch?: string; stages?: string[] }): JobRecord {
  return {
    apiVersion: 'slipway.dev/v1',
    kind: 'PipelineJob',
    id,
    state: 'queued',
    step: 'queued',
    request,
    queuedAt: now.toISOString(),
    ...(pinned ? { commit: pinned.commit, ...(pinned.branch ? { branch: pinned.branch } : {}) } : {}),
    stages: (pinned?.stages ?? []).map((name) => ({ name, status: 'pending', exitCode: null })),
  };
}

/** Queued jobs first-come first-served: by queue time, then id. */
export function byQueueOrder(a: JobRecord, b: JobRecord): number {
  return a.queuedAt < b.queuedAt ? -1 : a.queuedAt > b.queuedAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export type Admission = { ok: true } | { ok: false; queued: number; running: number; message: string };

export function admit(jobs: readonly JobRecord[], limits: Pick<QueueLimits, 'maxQueued' | 'concurrency'>): Admission {
  const queued = jobs.filter((j) => j.state === 'queued').length;
  const running = jobs.filter((j) => j.state === 'running').length;
  // A free runner slot takes the job at once, so it never waits in the queue.
  if (queued < limits.maxQueued || (queued === 0 && running < limits.concurrency)) return { ok: true };
  return {
    ok: false,
    queued,
    running,
    message: `the pipeline queue is full: ${queued} job(s) waiting (the limit) and ${running} running (concurrency ${limits.concurrency}); retry once one finishes`,
  };
}

/** The queued jobs to start now so that at most `concurrency` run. */
export function toStart(jobs: readonly JobRecord[], concurrency: number): string[] {
  const running = jobs.filter((j) => j.state === 'running').length;
  const free = Math.max(0, concurrency - running);
  return jobs
    .filter((j) => j.state === 'queued')
    .sort(byQueueOrder)
    .slice(0, free)
    .map((j) => j.id);
}

export function startJob(job: JobRecord, now: Date): JobRecord {
  if (job.state !== 'queued') throw new Error(`job ${job.id} is ${job.state}, not queued`);
  return { ...job, state: 'running', step: 'resolving', startedAt: now.toISOString() };
}

/** Folds a runner event into a running job's record; events for a job that already ended are ignored. */
export function applyEvent(job: JobRecord, event: JobEvent, now: Date): JobRecord {
  if (job.state !== 'running') return job;
  switch (event.type) {
    case 'resolved':
      return { ...job, commit: event.commit, ...(event.branch ? { branch: event.branch } : {}) };
    case 'planned': {
      const known = new Map(job.stages.map((s) => [s.name, s]));
      return { ...job, step: 'stages', stages: event.stages.map((name) => known.get(name) ?? { name, status: 'pending', exitCode: null }) };
    }
    case 'stage-started':
      return {
        ...job,
        step: 'stages',
        stages: upsert(job.stages, { name: event.stage, status: 'running', exitCode: null, startedAt: now.toISOString(), ...(event.shards && event.shards > 1 ? { shards: event.shards } : {}) }),
      };
    case 'stage-finished': {
      const before = job.stages.find((s) => s.name === event.stage.name);
      const kept = { ...(before?.startedAt ? { startedAt: before.startedAt } : {}), ...(before?.shards ? { shards: before.shards } : {}) };
      return { ...job, stages: upsert(job.stages, { ...kept, ...event.stage }) };
    }
    case 'step':
      return { ...job, step: event.step };
  }
}

function upsert(stages: StageRecord[], stage: StageRecord): StageRecord[] {
  const i = stages.findIndex((s) => s.name === stage.name);
  if (i < 0) return [...stages, stage];
  return stages.map((s, j) => (j === i ? stage : s));
}

export function finishJob(job: JobRecord, outcome: JobOutcome, now: Date): JobRecord {
  if (completed(job.state)) return job;
  const finishedAt = now.toISOString();
  if (outcome.state === 'succeeded') {
    return { ...job, state: 'succeeded', step: 'done', finishedAt, result: outcome.result, commit: outcome.result.commit, ...(outcome.result.branch ? { branch: outcome.result.branch } : {}) };
  }
  const stages = closeStages(outcome.stages ?? job.stages, `the job failed: ${outcome.error.code}`);
  return { ...job, state: 'failed', step: 'done', finishedAt, stages, error: outcome.error };
}

/** A job that was running when the controller stopped or died: reported, never silently lost or re-run. */
export function interruptJob(job: JobRecord, now: Date, why: string): JobRecord {
  if (job.state !== 'running') return job;
  const error: JobFailure = { code: 'INTERRUPTED', message: `${why} while this job ran (step ${job.step}); nothing after that point is known. Trigger it again to rebuild.` };
  return { ...job, state: 'interrupted', finishedAt: now.toISOString(), stages: closeStages(job.stages, why), error };
}

/** A job stopped on request: a queued one never runs, a running one has had its build cancelled. */
export function cancelJob(job: JobRecord, now: Date, actor: string): JobRecord {
  if (job.state !== 'queued' && job.state !== 'running') return job;
  const why = `cancelled by ${actor}`;
  const error: JobFailure = { code: 'CANCELLED', message: `${why} ${job.state === 'queued' ? 'before it started' : `while it ran (step ${job.step})`}; nothing was pushed after that point` };
  return { ...job, state: 'cancelled', step: 'done', finishedAt: now.toISOString(), stages: closeStages(job.stages, why), error };
}

/** Pending stages never ran (skipped); a running one did not finish (failed). */
function closeStages(stages: StageRecord[], why: string): StageRecord[] {
  return stages.map((s) =>
    s.status === 'pending' ? { ...s, status: 'skipped', reason: s.reason ?? why } : s.status === 'running' ? { ...s, status: 'failed', reason: s.reason ?? why } : s,
  );
}

/**
 * What a restart makes of the records on disk: running jobs become `interrupted`; queued ones stay queued and
 * run again in their order (their trigger was accepted, so they are owed a run).
 */
export function recover(jobs: readonly JobRecord[], now: Date): { jobs: JobRecord[]; changed: JobRecord[] } {
  const changed: JobRecord[] = [];
  const out = jobs.map((j) => {
    if (j.state !== 'running') return j;
    const next = interruptJob(j, now, 'the controller stopped');
    changed.push(next);
    return next;
  });
  return { jobs: out, changed };
}

/** Finished jobs beyond the newest `keep` (queued and running ones are never dropped). */
export function toForget(jobs: readonly JobRecord[], keep: number): string[] {
  return jobs
    .filter((j) => completed(j.state))
    .sort((a, b) => -byQueueOrder(a, b))
    .slice(keep)
    .map((j) => j.id);
}

/** Newest first. */
export function recent(jobs: readonly JobRecord[], limit: number): JobRecord[] {
  return [...jobs].sort((a, b) => -byQueueOrder(a, b)).slice(0, limit);
}

/**
 * A record as the API shows it: credentials in an `envs` URL (https://user:token@host/...) are masked. The
 * record on disk (0600) keeps them, so a job queued before a restart can still propose.
 */
export function redacted(job: JobRecord): JobRecord {
  const envs = job.request.envs;
  if (!envs || !/^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(envs)) return job;
  return { ...job, request: { ...job.request, envs: envs.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/]*@/i, '$1***@') } };
}
