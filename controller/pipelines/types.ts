/**
 * Builder jobs queued through the controller's API: what a caller asks for, what a job record holds, and
 * the two ports the queue is given (where records are kept, and what runs a job).
 */

/** What `POST /api/v1/pipelines/trigger` accepts (validated by `PIPELINE_REQUEST_SCHEMA`). */
export interface PipelineRequest {
  /** The service repository: an absolute path on the controller's machine (what the builder builds from). */
  repo: string;
  /** A commit sha or any revision git understands; default HEAD. */
  commit?: string;
  /** The branch the build is for (stage conditions, proposals); default the branch pointing at the commit. */
  branch?: string;
  /** `oci:<absolute dir>`, an absolute dir, or `host[:port]/name`; default `oci:$SLIPWAY_HOME/images`. */
  registry?: string;
  /** Also tag the image (deployments always use the digest). */
  tag?: string;
  /** Run the stages even when the build cache has this build. */
  noCache?: boolean;
  /** Then propose the digest to the first environment of this environments repository (path or URL). */
  envs?: string;
  /**
   * Signing, as `slipway build` decides it: undefined signs when a key exists (unsigned otherwise), true makes a
   * missing key a failure, false pushes without provenance.
   */
  sign?: boolean;
  /** Sign keylessly (Fulcio + Rekor) instead of with the controller's key. */
  keyless?: boolean;
  /** Who asked (recorded, and the author of the proposal). */
  actor?: string;
}

/** A closed set; `completed()` says which are final. `cancelled`: stopped on request (queued or running). */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'interrupted' | 'cancelled';
export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'succeeded', 'failed', 'interrupted', 'cancelled'];
export type StageState = 'pending' | 'running' | 'passed' | 'failed' | 'skipped';

export const FINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'interrupted', 'cancelled'];
export const completed = (state: JobState): boolean => FINAL_STATES.includes(state);

export interface StageRecord {
  name: string;
  status: StageState;
  /** Exit code of the stage's (failing) process; null while pending or running, when skipped or killed. */
  exitCode: number | null;
  durationMs?: number;
  logPath?: string;
  startedAt?: string;
  shards?: number;
  /** Why it was skipped or failed, in words. */
  reason?: string;
}

/** The steps of a job after the stages, so a caller sees where a running job is. */
export type JobStep = 'queued' | 'resolving' | 'stages' | 'image' | 'signing' | 'proposing' | 'done';

export interface JobResult {
  /** `repository@sha256:…` */
  imageRef: string;
  repository: string;
  digest: string;
  /** True when the build cache had this build: the stages shown are the recorded original run. */
  cacheHit: boolean;
  commit: string;
  branch?: string;
  signed: boolean;
  /** How it was signed (when signed). */
  signature?: { by: string; attestationTag: string; referrer: string };
  /** Why it is not signed (when not). */
  unsignedReason?: string;
  /** The outcome of proposing the digest to the first environment (when `envs` was given). */
  proposal?: { outcome: string; environment?: string; summary: string; [key: string]: unknown };
  logDir?: string;
}

export interface JobFailure {
  code: string;
  message: string;
  /** The stage that failed, with the last lines of its log. */
  stage?: string;
  logTail?: string[];
  logPath?: string;
}

export interface JobRecord {
  apiVersion: 'slipway.dev/v1';
  kind: 'PipelineJob';
  id: string;
  state: JobState;
  step: JobStep;
  request: PipelineRequest;
  queuedAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** The resolved commit (known once the job runs). */
  commit?: string;
  branch?: string;
  /** Every stage of the pipeline at that commit, in order, updated while the job runs. */
  stages: StageRecord[];
  result?: JobResult;
  error?: JobFailure;
}

/** What a runner reports while a job runs; the core folds these into the record. */
export type JobEvent =
  | { type: 'resolved'; commit: string; branch?: string }
  | { type: 'planned'; stages: string[] }
  | { type: 'stage-started'; stage: string; shards?: number }
  | { type: 'stage-finished'; stage: StageRecord }
  | { type: 'step'; step: JobStep };

export type JobOutcome = { state: 'succeeded'; result: JobResult } | { state: 'failed'; error: JobFailure; stages?: StageRecord[] };

/** What a preflight makes of a request: the commit it names now (and the stages there), or the field that cannot work. */
export type Preflight = { ok: true; commit: string; branch?: string; stages?: string[] } | { ok: false; field: string; message: string };

/**
 * Runs one job (the builder). Throwing is a failure too. `preflight` runs when the trigger arrives: it turns a
 * request that cannot run into a 400, and pins the commit a moving ref (HEAD, a branch) names at that moment,
 * which `run` then builds (`ctx.commit`, `ctx.branch`).
 */
export interface JobRunner {
  preflight?(request: PipelineRequest): Promise<Preflight>;
  run(request: PipelineRequest, ctx: { id: string; signal: AbortSignal; report(event: JobEvent): void; commit?: string; branch?: string }): Promise<JobOutcome>;
}

/** Where job records are kept. `save` must be atomic: a reader sees the old record or the new one. */
export interface JobStore {
  loadAll(): Promise<JobRecord[]>;
  save(record: JobRecord): Promise<void>;
  remove(id: string): Promise<void>;
}

export interface QueueLimits {
  /** Jobs running at once. */
  concurrency: number;
  /** Jobs waiting (not counting running ones); a trigger beyond this is refused. */
  maxQueued: number;
  /** Finished jobs kept (newest first); older records are deleted. */
  keep: number;
}
