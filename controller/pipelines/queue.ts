/**
 * The job queue's shell: holds the records, persists every change (a queued job is on disk before its
 * trigger is answered; stage updates are written as they happen), starts jobs as the core decides, and on
 * open turns records left `running` by a controller that died into `interrupted`.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { SlipwayError, isSlipwayError } from '../../lib/errors.js';
import { PipelineMetrics } from './metrics.js';
import { admit, applyEvent, cancelJob, finishJob, interruptJob, newJob, recent, recover, startJob, toForget, toStart } from './core.js';
import { completed, type JobEvent, type JobOutcome, type JobRecord, type JobRunner, type JobStore, type PipelineRequest, type QueueLimits } from './types.js';

export interface PipelineQueueOptions {
  store: JobStore;
  runner: JobRunner;
  limits?: Partial<QueueLimits>;
  clock?: { now(): Date };
  newId?: () => string;
  log?: (line: string) => void;
}

/** Builds are CPU-bound: one per core, at most 4 by default (a 2-core machine runs 2). */
export function defaultLimits(): QueueLimits {
  return { concurrency: Math.max(1, Math.min(4, availableParallelism())), maxQueued: 20, keep: 200 };
}

/** Sortable by time, unique by the random tail: `20261123-133305-1a2b3c`. */
export function newJobId(now: Date = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${t}-${randomBytes(3).toString('hex')}`;
}

export class PipelineQueue {
  readonly limits: QueueLimits;
  readonly metrics: PipelineMetrics;
  private readonly jobs = new Map<string, JobRecord>();
  private readonly aborts = new Map<string, AbortController>();
  private readonly runs = new Map<string, Promise<void>>();
  private readonly writes = new Map<string, Promise<void>>();
  private readonly notStarted = new Set<string>();
  /** Running jobs asked to stop, and by whom. */
  private readonly cancelling = new Map<string, string>();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly clock: { now(): Date };
  private readonly log: (line: string) => void;
  private closing = false;

  private constructor(private readonly options: PipelineQueueOptions) {
    const limits = { ...defaultLimits(), ...options.limits };
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isInteger(value) || value < (name === 'concurrency' ? 1 : 0)) {
        throw new SlipwayError('BAD_OPTION', `pipeline ${name} must be a whole number${name === 'concurrency' ? ' of at least 1' : ''}, not ${value}`, 'stalling', { option: name });
      }
    }
    this.limits = limits;
    this.metrics = new PipelineMetrics(() => this.jobs.values());
    this.clock = options.clock ?? { now: () => new Date() };
    this.log = options.log ?? (() => undefined);
  }

  /** Loads the records, reports jobs a dead controller left running as interrupted, and starts queued ones. */
  static async open(options: PipelineQueueOptions): Promise<PipelineQueue> {
    const queue = new PipelineQueue(options);
    const { jobs, changed } = recover(await options.store.loadAll(), queue.clock.now());
    for (const job of jobs) queue.jobs.set(job.id, job);
    for (const job of changed) {
      queue.log(`pipeline ${job.id} was running when the controller stopped: reported as interrupted`);
      await options.store.save(job);
    }
    await queue.forgetOld();
    queue.schedule();
    return queue;
  }

  get(id: string): JobRecord | undefined {
    return this.jobs.get(id);
  }

  /** Newest first. */
  list(limit = 50): JobRecord[] {
    return recent([...this.jobs.values()], limit);
  }

  /**
   * Queues a build. The answer is sent once the record is on disk, so an accepted job survives a crash.
   * Throws INVALID_REQUEST (with `field`) when the runner's preflight refuses it, QUEUE_FULL when the queue is.
   */
  async trigger(request: PipelineRequest): Promise<JobRecord> {
    if (this.closing) throw new SlipwayError('SHUTTING_DOWN', 'the controller is stopping; trigger the pipeline again once it runs', 'waiting');
    // Refused before the preflight too, so a flood of triggers against a full queue costs no git calls.
    this.admitOrThrow();
    const preflight = await this.options.runner.preflight?.(request);
    if (preflight && !preflight.ok) {
      this.metrics.refused.inc({ reason: 'invalid_request' });
      throw new SlipwayError('INVALID_REQUEST', preflight.message, 'stalling', { field: preflight.field });
    }
    this.admitOrThrow();
    const now = this.clock.now();
    let id = (this.options.newId ?? (() => newJobId(now)))();
    while (this.jobs.has(id)) id = newJobId(now);
    const job = newJob(id, request, now, preflight?.ok ? preflight : undefined);
    this.jobs.set(id, job);
    try {
      await this.persist(job, { throwOnError: true });
    } catch (err) {
      this.jobs.delete(id);
      throw new SlipwayError('STATE_WRITE_FAILED', `cannot record the job, so it was not queued: ${(err as Error).message}`, 'waiting');
    }
    this.schedule();
    return this.jobs.get(id)!;
  }

  private admitOrThrow(): void {
    const admission = admit([...this.jobs.values()], this.limits);
    if (admission.ok) return;
    this.metrics.refused.inc({ reason: 'queue_full' });
    throw new SlipwayError('QUEUE_FULL', admission.message, 'waiting', { queued: admission.queued, running: admission.running });
  }

  /**
   * Stops a job: a queued one is taken out of the queue, a running one has its build cancelled (the stage's
   * process group is killed) and is recorded once it has stopped. Undefined for an unknown id; throws
   * ALREADY_FINISHED for a job that has ended.
   */
  async cancel(id: string, actor = 'api'): Promise<JobRecord | undefined> {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    if (completed(job.state)) {
      throw new SlipwayError('ALREADY_FINISHED', `pipeline job ${id} already ${job.state}${job.finishedAt ? ` at ${job.finishedAt}` : ''}; there is nothing to cancel`, 'stalling', { state: job.state });
    }
    if (job.state === 'queued') {
      this.update(id, (j) => cancelJob(j, this.clock.now(), actor));
      await this.writes.get(id);
      this.log(`pipeline ${id}: cancelled by ${actor} before it started`);
      this.notifyIdle();
      return this.jobs.get(id);
    }
    this.cancelling.set(id, actor);
    this.aborts.get(id)?.abort();
    await this.runs.get(id);
    return this.jobs.get(id);
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops starting jobs, cancels running builds and records them as interrupted. */
  async close(): Promise<void> {
    this.closing = true;
    for (const ac of this.aborts.values()) ac.abort();
    await Promise.all([...this.runs.values()]);
    await Promise.all([...this.writes.values()]);
  }

  private notifyIdle(): void {
    if (this.isIdle()) this.idleWaiters.splice(0).forEach((resolve) => resolve());
  }

  private isIdle(): boolean {
    return ![...this.jobs.values()].some((j) => j.state === 'queued' || j.state === 'running');
  }

  private schedule(): void {
    if (this.closing) return;
    for (const id of toStart([...this.jobs.values()], this.limits.concurrency)) {
      const job = startJob(this.jobs.get(id)!, this.clock.now());
      this.jobs.set(id, job);
      this.metrics.started(job);
      void this.persist(job);
      const run = this.run(job).finally(() => {
        this.runs.delete(id);
        this.aborts.delete(id);
        this.notifyIdle();
      });
      this.runs.set(id, run);
    }
  }

  private async run(job: JobRecord): Promise<void> {
    const ac = new AbortController();
    this.aborts.set(job.id, ac);
    const report = (event: JobEvent) => this.update(job.id, (j) => applyEvent(j, event, this.clock.now()));
    let outcome: JobOutcome;
    try {
      outcome = await this.options.runner.run(job.request, {
        id: job.id,
        signal: ac.signal,
        report,
        ...(job.commit ? { commit: job.commit } : {}),
        ...(job.branch ? { branch: job.branch } : {}),
      });
    } catch (err) {
      outcome = { state: 'failed', error: { code: isSlipwayError(err) ? err.code : 'INTERNAL', message: (err as Error).message ?? String(err) } };
    }
    const now = this.clock.now();
    const cancelledBy = this.cancelling.get(job.id);
    this.cancelling.delete(job.id);
    if (cancelledBy !== undefined && outcome.state === 'failed') {
      // The builder's own account of the stages (the killed one failed, later ones skipped) comes first.
      // (A job that got to its end before the cancellation reached it is recorded as it ended.)
      if (outcome.state === 'failed' && outcome.stages) this.update(job.id, (j) => ({ ...j, stages: outcome.stages! }));
      this.update(job.id, (j) => cancelJob(j, now, cancelledBy));
    } else if (ac.signal.aborted) this.update(job.id, (j) => interruptJob(j, now, 'the controller stopped'));
    else this.update(job.id, (j) => finishJob(j, outcome, now));
    const final = this.jobs.get(job.id)!;
    this.metrics.ended(final);
    this.log(`pipeline ${job.id}: ${final.state}${final.result ? ` ${final.result.imageRef}` : final.error ? ` ${final.error.code}: ${final.error.message.split('\n')[0]}` : ''}`);
    await this.writes.get(job.id);
    await this.forgetOld();
    this.schedule();
  }

  private update(id: string, change: (job: JobRecord) => JobRecord): void {
    const before = this.jobs.get(id);
    if (!before) return;
    const after = change(before);
    if (after === before) return;
    this.jobs.set(id, after);
    void this.persist(after);
  }

  /**
   * Writes of one job go one after another, each of the record as it is when the write starts; changes made
   * while a write waits its turn ride on that write (a burst of stage events costs one or two fsyncs).
   */
  private persist(job: JobRecord, how: { throwOnError?: boolean } = {}): Promise<void> {
    const waiting = this.writes.get(job.id);
    if (waiting && this.notStarted.has(job.id) && !how.throwOnError) return waiting;
    this.notStarted.add(job.id);
    const saved = (waiting ?? Promise.resolve()).then(() => {
      this.notStarted.delete(job.id);
      return this.options.store.save(this.jobs.get(job.id) ?? job);
    });
    const write = saved.catch((err: unknown) => this.log(`pipelines: cannot write the record of ${job.id}: ${(err as Error).message}`));
    this.writes.set(job.id, write);
    void write.then(() => {
      if (this.writes.get(job.id) === write) this.writes.delete(job.id);
    });
    return how.throwOnError ? saved : write;
  }

  private async forgetOld(): Promise<void> {
    for (const id of toForget([...this.jobs.values()], this.limits.keep)) {
      const job = this.jobs.get(id);
      if (!job || !completed(job.state)) continue;
      this.jobs.delete(id);
      await this.writes.get(id);
      await this.options.store.remove(id).catch((err: unknown) => this.log(`pipelines: cannot remove ${id}: ${(err as Error).message}`));
    }
  }
}
