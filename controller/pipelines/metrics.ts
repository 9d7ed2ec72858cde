/** The job queue's metrics (prom-client), on a registry of its own; `/metrics` serves it with the controller's. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { JOB_STATES as STATES, type JobRecord, type JobState } from './types.js';

export class PipelineMetrics {
  readonly registry = new Registry();
  readonly refused = new Counter({
    name: 'slipway_pipeline_triggers_refused_total',
    help: 'Pipeline triggers refused, by reason (queue_full, invalid_request).',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'slipway_pipeline_job_duration_seconds',
    help: 'Time from start to end of a pipeline job, by final state and whether the build cache had it.',
    labelNames: ['state', 'cache'],
    buckets: [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
    registers: [this.registry],
  });
  readonly waited = new Histogram({
    name: 'slipway_pipeline_queue_wait_seconds',
    help: 'Time a pipeline job waited in the queue before it started.',
    buckets: [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900],
    registers: [this.registry],
  });

  constructor(jobs: () => Iterable<JobRecord>) {
    new Gauge({
      name: 'slipway_pipeline_jobs',
      help: 'Pipeline jobs the controller keeps, by state.',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const counts = new Map<JobState, number>(STATES.map((s) => [s, 0]));
        for (const job of jobs()) counts.set(job.state, (counts.get(job.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
  }

  started(job: JobRecord): void {
    if (job.startedAt) this.waited.observe(Math.max(0, (Date.parse(job.startedAt) - Date.parse(job.queuedAt)) / 1000));
  }

  ended(job: JobRecord): void {
    if (!job.startedAt || !job.finishedAt) return;
    this.duration.observe({ state: job.state, cache: job.result?.cacheHit ? 'hit' : 'miss' }, Math.max(0, (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000));
  }
}
