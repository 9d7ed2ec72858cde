/**
 * Runs a checked pipeline in a checkout: stages in order, each as `parallelism` shards in their own
 * process group, with a scrubbed environment (PATH, HOME, the stage env and SLIPWAY_* only), a
 * timeout that kills the whole group, one capped log file per shard, and a result per stage. The
 * first failing stage stops the pipeline; its sibling shards are cancelled.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { evaluateCondition, type ConditionFacts } from './condition.js';
import type { Pipeline, Stage } from './load.js';

export type StageStatus = 'succeeded' | 'failed' | 'timed-out' | 'skipped' | 'cancelled';

export interface ShardResult {
  index: number;
  status: Exclude<StageStatus, 'skipped'>;
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  logPath: string;
  /** Bytes of output produced (the log holds at most maxLogBytes of them). */
  outputBytes: number;
  truncated: boolean;
}

export interface StageResult {
  name: string;
  status: StageStatus;
  /** Exit code of the failing shard, else of shard 0; null when skipped, killed or never started. */
  exitCode: number | null;
  durationMs: number;
  /** Log of the failing shard, else of shard 0 (undefined when skipped). */
  logPath?: string;
  shards: ShardResult[];
  /** Why it was skipped, failed or cancelled, in words. */
  reason?: string;
}

export interface PipelineRun {
  status: 'succeeded' | 'failed' | 'cancelled';
  stages: StageResult[];
  /** For a failed run: the stage, a sentence, and the last lines of its log. */
  failure?: { stage: string; message: string; tail: string[] };
}

export type PipelineEvent =
  | { type: 'stage-started'; stage: string; index: number; total: number; shards: number; at: number }
  | { type: 'stage-finished'; result: StageResult; index: number; total: number; at: number }
  | { type: 'output'; stage: string; shard: number; chunk: Buffer };

export interface Clock {
  now(): number;
}

export interface RunPipelineOptions {
  pipeline: Pipeline;
  /** The checkout the stages run in. */
  workDir: string;
  /** Where the per-shard logs go (created). */
  logDir: string;
  facts: ConditionFacts;
  /** PATH and HOME for the stages (nothing else of the caller's environment is passed). */
  baseEnv: { PATH: string; HOME: string };
  /** SLIPWAY_* variables to pass (others are dropped); SLIPWAY_STAGE and the shard variables are added. */
  slipwayEnv?: Record<string, string>;
  /** Per shard log cap (default 8 MiB); output beyond it is counted and dropped. */
  maxLogBytes?: number;
  /** Between SIGTERM and SIGKILL on timeout or cancel (default 2 s). */
  killGraceMs?: number;
  /** How many log lines a failure message quotes (default 20). */
  tailLines?: number;
  clock?: Clock;
  onEvent?: (event: PipelineEvent) => void;
  signal?: AbortSignal;
}

const TAIL_BYTES = 16 * 1024;

export async function runPipeline(opts: RunPipelineOptions): Promise<PipelineRun> {
  const clock = opts.clock ?? { now: () => Date.now() };
  await mkdir(opts.logDir, { recursive: true });
  const results: StageResult[] = [];
  const total = opts.pipeline.stages.length;
  let failure: PipelineRun['failure'];
  let cancelled = false;

  for (const [index, stage] of opts.pipeline.stages.entries()) {
    if (failure || cancelled || opts.signal?.aborted) {
      cancelled ||= !failure;
      const result: StageResult = { name: stage.name, status: 'skipped', exitCode: null, durationMs: 0, shards: [], reason: failure ? `stage "${failure.stage}" failed` : 'the build was cancelled' };
      results.push(result);
      opts.onEvent?.({ type: 'stage-finished', result, index, total, at: clock.now() });
      continue;
    }
    if (stage.condition && !evaluateCondition(stage.condition.parsed, opts.facts)) {
      const result: StageResult = {
        name: stage.name,
        status: 'skipped',
        exitCode: null,
        durationMs: 0,
        shards: [],
        reason: `condition "${stage.condition.text}" is false (branch ${opts.facts.branch ?? '(none)'})`,
      };
      results.push(result);
      opts.onEvent?.({ type: 'stage-finished', result, index, total, at: clock.now() });
      continue;
    }
    opts.onEvent?.({ type: 'stage-started', stage: stage.name, index, total, shards: stage.parallelism, at: clock.now() });
    const { result, tail } = await runStage(stage, index, opts, clock);
    results.push(result);
    opts.onEvent?.({ type: 'stage-finished', result, index, total, at: clock.now() });
    if (result.status === 'cancelled') cancelled = true;
    else if (result.status !== 'succeeded') {
      failure = { stage: stage.name, message: failureMessage(result, stage, tail, opts.tailLines ?? 20), tail: lastLines(tail, opts.tailLines ?? 20) };
    }
  }
  return { status: failure ? 'failed' : cancelled ? 'cancelled' : 'succeeded', stages: results, ...(failure ? { failure } : {}) };
}

function failureMessage(result: StageResult, stage: Stage, tail: Buffer, lines: number): string {
  const failed = result.shards.find((s) => s.status === 'failed' || s.status === 'timed-out');
  const shard = stage.parallelism > 1 && failed ? ` (shard ${failed.index + 1} of ${stage.parallelism})` : '';
  const why =
    result.status === 'timed-out'
      ? `timed out after ${formatMs(stage.timeoutMs)} and was killed`
      : failed?.signal
        ? `was killed by ${failed.signal}`
        : failed?.exitCode === null
          ? 'could not start'
          : `failed with exit code ${failed?.exitCode ?? result.exitCode}`;
  const shown = lastLines(tail, lines);
  const log = result.logPath ?? '(no log)';
  return (
    `stage "${stage.name}"${shard} ${why} after ${formatMs(result.durationMs)}: ${stage.display}\n` +
    (shown.length ? `last ${shown.length} lines of ${log}:\n${shown.map((l) => `  | ${l}`).join('\n')}` : `its log ${log} is empty`)
  );
}

function lastLines(tail: Buffer, n: number): string[] {
  const lines = tail.toString('utf8').replace(/\r/g, '').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.slice(-n).map((l) => (l.length > 500 ? `${l.slice(0, 500)}…` : l));
}

export function formatMs(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1_000);
  return `${m}m${String(s).padStart(2, '0')}s`;
}

interface RunningShard {
  promise: Promise<ShardResult & { tail: Buffer }>;
  cancel(reason: 'cancelled'): void;
}

async function runStage(stage: Stage, index: number, opts: RunPipelineOptions, clock: Clock): Promise<{ result: StageResult; tail: Buffer }> {
  const started = clock.now();
  const prefix = `${String(index + 1).padStart(2, '0')}-${stage.name}`;
  const shards: RunningShard[] = [];
  const onAbort = () => shards.forEach((s) => s.cancel('cancelled'));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (let i = 0; i < stage.parallelism; i++) {
      const logPath = join(opts.logDir, stage.parallelism > 1 ? `${prefix}.shard-${i}.log` : `${prefix}.log`);
      shards.push(runShard(stage, i, logPath, opts, clock));
    }
    // Fail fast: the first shard that fails cancels its siblings.
    const settled = shards.map((s) =>
      s.promise.then((r) => {
        if (r.status === 'failed' || r.status === 'timed-out') shards.forEach((o) => o.cancel('cancelled'));
        return r;
      }),
    );
    const done = await Promise.all(settled);
    const failed = done.find((r) => r.status === 'failed' || r.status === 'timed-out');
    const cancelled = done.find((r) => r.status === 'cancelled');
    const status: StageStatus = failed ? failed.status : cancelled ? 'cancelled' : 'succeeded';
    const primary = failed ?? done[0]!;
    const result: StageResult = {
      name: stage.name,
      status,
      exitCode: primary.exitCode,
      durationMs: clock.now() - started,
      logPath: primary.logPath,
      shards: done.map(({ tail: _tail, ...r }) => r),
      ...(status === 'cancelled' ? { reason: 'the build was cancelled' } : {}),
    };
    return { result, tail: primary.tail };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

function runShard(stage: Stage, index: number, logPath: string, opts: RunPipelineOptions, clock: Clock): RunningShard {
  const started = clock.now();
  const maxLogBytes = opts.maxLogBytes ?? 8 * 1024 * 1024;
  const graceMs = opts.killGraceMs ?? 2_000;
  const env: Record<string, string> = {
    ...Object.fromEntries(Object.entries(opts.slipwayEnv ?? {}).filter(([k]) => k.startsWith('SLIPWAY_'))),
    ...stage.env,
    PATH: opts.baseEnv.PATH,
    HOME: opts.baseEnv.HOME,
    SLIPWAY_STAGE: stage.name,
    SLIPWAY_SHARD_INDEX: String(index),
    SLIPWAY_SHARD_TOTAL: String(stage.parallelism),
  };
  if (stage.env.PATH) env.PATH = stage.env.PATH;
  if (stage.env.HOME) env.HOME = stage.env.HOME;

  let endReason: 'timed-out' | 'cancelled' | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let pid: number | undefined;
  let exited = false;
  const killGroup = (sig: NodeJS.Signals) => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      /* the group is gone */
    }
  };
  const terminate = (why: 'timed-out' | 'cancelled') => {
    if (exited || endReason) return;
    endReason = why;
    killGroup('SIGTERM');
    killTimer = setTimeout(() => killGroup('SIGKILL'), graceMs);
  };

  const promise = new Promise<ShardResult & { tail: Buffer }>((resolve) => {
    const log: WriteStream = createWriteStream(logPath);
    let written = 0;
    let produced = 0;
    let truncated = false;
    let tail = Buffer.alloc(0);
    const record = (chunk: Buffer) => {
      produced += chunk.length;
      tail = Buffer.concat([tail, chunk]);
      if (tail.length > TAIL_BYTES * 2) tail = tail.subarray(tail.length - TAIL_BYTES);
      opts.onEvent?.({ type: 'output', stage: stage.name, shard: index, chunk });
      if (truncated) return;
      if (written + chunk.length <= maxLogBytes) {
        log.write(chunk);
        written += chunk.length;
      } else {
        const room = maxLogBytes - written;
        if (room > 0) log.write(chunk.subarray(0, room));
        written = maxLogBytes;
        truncated = true;
        log.write(`\n[slipway: log capped at ${maxLogBytes} bytes; further output is dropped]\n`);
      }
    };

    let finished = false;
    const finish = (status: ShardResult['status'], exitCode: number | null, signal: string | null, note?: string) => {
      if (finished) return;
      finished = true;
      clearTimeout(timeout);
      clearTimeout(killTimer);
      if (note) {
        const line = Buffer.from(`\n[slipway: ${note}]\n`);
        tail = Buffer.concat([tail, line]);
        log.write(line);
      }
      if (truncated) tail = Buffer.concat([tail, Buffer.from(`[slipway: ${produced} bytes of output, log capped at ${maxLogBytes}]\n`)]);
      log.end(() =>
        resolve({ index, status, exitCode, signal, durationMs: clock.now() - started, logPath, outputBytes: produced, truncated, tail }),
      );
    };

    const timeout = setTimeout(() => terminate('timed-out'), stage.timeoutMs);
    let child;
    try {
      child = spawn(stage.argv[0]!, stage.argv.slice(1), { cwd: opts.workDir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      finish('failed', null, null, `could not start ${stage.argv[0]}: ${(err as Error).message}`);
      return;
    }
    pid = child.pid;
    child.stdout.on('data', record);
    child.stderr.on('data', record);
    let exit: { code: number | null; signal: string | null } | undefined;
    child.on('error', (err) => {
      exited = true;
      finish('failed', null, null, `could not start ${stage.argv[0]}: ${err.message}`);
    });
    child.on('exit', (code, signal) => {
      exited = true;
      exit = { code, signal };
      // Reap what the stage left running in the background: nothing outlives its stage.
      killGroup('SIGKILL');
    });
    child.on('close', () => {
      if (!exit) return;
      const { code, signal } = exit;
      if (endReason === 'timed-out') finish('timed-out', code, signal, `stage timed out after ${formatMs(stage.timeoutMs)}; process group killed`);
      else if (endReason === 'cancelled') finish('cancelled', code, signal, 'cancelled');
      else if (code === 0) finish('succeeded', 0, null);
      else finish('failed', code, signal);
    });
  });
  return { promise, cancel: (why) => terminate(why) };
}
