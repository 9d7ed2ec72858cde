/**
 * Worker threads that fill and compress layer blocks (block-worker.ts), one per core but one (at most
 * three): the calling thread compresses too, taking queued blocks while it waits (`steal`).
 * Started on first use and kept for the process (unref'd, so they never keep it alive); `warmUp()`
 * starts them early so their start-up overlaps the walk of the context. Which worker compresses which
 * block never changes a byte: a block's output depends on its content only.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { SlipwayError, type ErrorKind } from '../../lib/errors.js';
import type { ProcessedBlock } from './block.js';
import type { BlockJob } from './plan.js';

const MAX_WORKERS = 3;
/** Jobs each worker holds at once: the next one is already there when it finishes one. */
const IN_FLIGHT_PER_WORKER = 2;

interface Pending {
  id: number;
  job: BlockJob;
  resolve: (block: ProcessedBlock) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  worker: Worker;
  running: Map<number, Pending>;
}

type Reply = { id: number; raw: Uint8Array; compressed: Uint8Array } | { id: number; error: { code?: string; message: string; kind?: ErrorKind; data?: Record<string, unknown> } };

export class BlockWorkers {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private broken: unknown;
  private closing = false;

  constructor(readonly size = Math.max(1, Math.min(MAX_WORKERS, availableParallelism() - 1))) {
    for (let i = 0; i < size; i++) this.slots.push(this.start());
  }

  run(job: BlockJob): Promise<ProcessedBlock> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, job, resolve, reject });
      this.dispatch();
    });
  }

  /** A queued job no worker has started, for the caller to do itself (settle it with `resolve`/`reject`). */
  steal(): { job: BlockJob; resolve: (block: ProcessedBlock) => void; reject: (err: unknown) => void } | undefined {
    return this.queue.shift();
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private start(): Slot {
    const slot: Slot = { worker: spawn(), running: new Map() };
    slot.worker.unref();
    slot.worker.on('message', (reply: Reply) => {
      const pending = slot.running.get(reply.id);
      if (!pending) return;
      slot.running.delete(reply.id);
      if (slot.running.size === 0 && this.queue.length === 0) slot.worker.unref();
      if ('error' in reply) {
        const e = reply.error;
        pending.reject(e.code ? new SlipwayError(e.code, e.message, e.kind ?? 'generic', e.data ?? {}) : new Error(`compressing layer block ${pending.job.index}: ${e.message}`));
      } else {
        pending.resolve({ raw: reply.raw, compressed: reply.compressed });
      }
      this.dispatch();
    });
    const fail = (err: unknown) => {
      if (this.broken) return;
      // A worker that dies takes the pool with it: its jobs and every queued one fail, and the next build starts a new pool.
      this.broken = new Error(`a layer compression worker stopped: ${err instanceof Error ? err.message : String(err)}`);
      if (sharedPool === this) sharedPool = undefined;
      for (const s of this.slots) {
        for (const p of s.running.values()) p.reject(this.broken);
        s.running.clear();
      }
      for (const p of this.queue.splice(0)) p.reject(this.broken);
      void this.close();
    };
    slot.worker.on('error', fail);
    slot.worker.on('exit', (code) => {
      if (!this.broken && !this.closing) fail(new Error(`exited with code ${code}`));
    });
    return slot;
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const slot = this.slots.reduce((a, b) => (b.running.size < a.running.size ? b : a));
      if (slot.running.size >= IN_FLIGHT_PER_WORKER) return;
      const pending = this.queue.shift()!;
      slot.running.set(pending.id, pending);
      slot.worker.ref(); // busy: the process waits for its answer
      slot.worker.postMessage({ id: pending.id, job: pending.job });
    }
  }
}

let sharedPool: BlockWorkers | undefined;

/** The process's pool, started on first use. */
export function blockWorkers(): BlockWorkers {
  return (sharedPool ??= new BlockWorkers());
}

/** Starts the pool now, so the workers are up when the first block is ready. */
export function warmUp(): void {
  blockWorkers();
}

/** Stops the pool (the next build starts a new one): for benchmarks that measure a build's start-up. */
export async function closeBlockWorkers(): Promise<void> {
  const pool = sharedPool;
  sharedPool = undefined;
  await pool?.close();
}

/**
 * Compiled (dist/), the worker is block-worker.js. From the TypeScript sources (tests, SLIPWAY_FROM_SOURCE)
 * the worker registers tsx first, as bin/slipway.js does for the main thread.
 */
function spawn(): Worker {
  const here = import.meta.url;
  // Not the parent's flags: a parent started with `--import tsx` (a benchmark, a dev shell) would make every
  // worker load tsx and its module-hooks thread before its first block.
  const options = { execArgv: [] as string[] };
  if (!here.endsWith('.ts')) return new Worker(new URL('./block-worker.js', here), options);
  // tsx's ESM API (its CommonJS build of it cannot find its own ESM half from an eval'd worker).
  const manifest = createRequire(here).resolve('tsx/package.json');
  const exports = (JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import: { default: string } }> }).exports;
  const api = pathToFileURL(join(dirname(manifest), exports['./esm/api']!.import.default)).href;
  const entry = new URL('./block-worker.ts', here).href;
  return new Worker(`import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`, { ...options, eval: true });
}
