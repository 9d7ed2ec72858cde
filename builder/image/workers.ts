/**
 * Worker threads that fill and compress layer blocks (block-worker.ts), one per core but one (at most
 * three): the calling thread compresses too, taking queued blocks while it waits (`steal`).
 * Started on first use and kept for the process (unref'd, so they never keep it alive);
 * `prepareBlockWorkers()` starts them early (`slipway build` does while the pipeline's stages run) so
 * their start-up is done before the first block. Which worker compresses which block never changes a byte: a block's output
 * depends on its content only.
 * Block buffers go round: a job takes two spare buffers (one for the tar bytes, one for the compressed
 * bytes), and the caller gives them back once it has hashed or sent them (`recycle`); fresh memory costs
 * a page fault per 4 KiB, ~0.8 ms per MiB in this VM.
 */
import { lstatSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { SlipwayError, type ErrorKind } from '../../lib/errors.js';
import { BLOCK_BUFFER_BYTES, warmUpBlocks, type ProcessedBlock } from './block.js';
import { BLOCK_BYTES } from './deflate.js';
import { layoutWarmUp, type BlockJob } from './plan.js';
import { withDefaultTiering } from './tiering.js';

const MAX_WORKERS = 3;
/** Up to this many blocks are compressed in the calling thread: starting worker threads costs more. */
export const IN_PROCESS_MAX_BLOCKS = 2;
/**
 * A layer of at least this many files has the calling thread's tar layout warmed up before it (below
 * that, the warm-up costs more than it saves).
 */
const LAYOUT_WARM_UP_MIN_FILES = 1000;
/** Jobs each worker holds at once: the next one is already there when it finishes one. */
const IN_FLIGHT_PER_WORKER = 2;
/**
 * Rounds of the tar layout over 5,000 made-up entries, under V8's default budget (tiering.ts): enough for it
 * to optimize the layout before the build (under a one-shot build's raised budget that took 12 rounds,
 * ~110 ms of CPU cold).
 */
const LAYOUT_WARM_UP_ROUNDS = 3;
/** Block buffers kept for reuse (each BLOCK_BUFFER_BYTES): enough for every block in flight, tar and compressed. */
const MAX_SPARE_BUFFERS = 32;

interface Pending {
  id: number;
  job: BlockJob;
  resolve: (block: ProcessedBlock) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  worker: Worker;
  running: Map<number, Pending>;
  /** Started and warmed up (block-worker.ts says so); jobs go only to ready workers. */
  ready: boolean;
  /** Settled when the worker is ready (or the pool broke). */
  started: Promise<void>;
  markStarted: () => void;
}

type Reply = { ready: true } | { id: number; raw: Uint8Array; compressed: Uint8Array; freshBuffers: number } | { id: number; error: { code?: string; message: string; kind?: ErrorKind; data?: Record<string, unknown> } };

export class BlockWorkers {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private readonly spare: ArrayBuffer[] = [];
  private nextId = 0;
  /** Block buffers made as new memory since the pool started (none once enough spares go round). */
  freshBuffers = 0;
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

  /** A block buffer done with (hashed, or sent): goes with a later job instead of fresh memory. */
  recycle(buffer: ArrayBufferLike): void {
    if (buffer instanceof ArrayBuffer && buffer.byteLength >= BLOCK_BUFFER_BYTES && this.spare.length < MAX_SPARE_BUFFERS) this.spare.push(buffer);
  }

  /** Settles when every worker has started and warmed up (the process stays up for it meanwhile). */
  async ready(): Promise<void> {
    const waiting = this.slots.filter((s) => !s.ready);
    for (const s of waiting) s.worker.ref();
    try {
      await Promise.all(this.slots.map((s) => s.started));
    } finally {
      for (const s of waiting) if (s.running.size === 0) s.worker.unref();
    }
  }

  /** Makes spare buffers up to `count` and touches their pages now, so a build soon after finds them ready. */
  prefill(count: number): void {
    while (this.spare.length < Math.min(count, MAX_SPARE_BUFFERS)) {
      const buffer = new ArrayBuffer(BLOCK_BUFFER_BYTES);
      new Uint8Array(buffer).fill(0);
      this.spare.push(buffer);
    }
  }

  /** A spare buffer for a job the caller does itself. */
  spareBuffer(): ArrayBuffer | undefined {
    return this.spare.pop();
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private start(): Slot {
    let markStarted!: () => void;
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    const slot: Slot = { worker: spawn(), running: new Map(), ready: false, started, markStarted };
    slot.worker.on('message', (reply: Reply) => {
      if ('ready' in reply) {
        slot.ready = true;
        slot.markStarted();
        this.dispatch();
        return;
      }
      const pending = slot.running.get(reply.id);
      if (!pending) return;
      slot.running.delete(reply.id);
      if (slot.running.size === 0 && this.queue.length === 0) slot.worker.unref();
      if ('error' in reply) {
        const e = reply.error;
        pending.reject(e.code ? new SlipwayError(e.code, e.message, e.kind ?? 'generic', e.data ?? {}) : new Error(`compressing layer block ${pending.job.index}: ${e.message}`));
      } else {
        this.freshBuffers += reply.freshBuffers;
        pending.resolve({ raw: reply.raw, compressed: reply.compressed, freshBuffers: reply.freshBuffers });
      }
      this.dispatch();
    });
    const fail = (err: unknown) => {
      if (this.broken) return;
      // A worker that dies takes the pool with it: its jobs and every queued one fail, and the next build starts a new pool.
      this.broken = new Error(`a layer compression worker stopped: ${err instanceof Error ? err.message : String(err)}`);
      for (const s of this.slots) s.markStarted();
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
    // Last: adding a 'message' listener refs the worker's port again, and an idle pool must not keep the process alive.
    slot.worker.unref();
    return slot;
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const ready = this.slots.filter((s) => s.ready);
      if (ready.length === 0) return;
      const slot = ready.reduce((a, b) => (b.running.size < a.running.size ? b : a));
      if (slot.running.size >= IN_FLIGHT_PER_WORKER) return;
      const pending = this.queue.shift()!;
      slot.running.set(pending.id, pending);
      slot.worker.ref(); // busy: the process waits for its answer
      const raw = this.spare.pop();
      const compressed = this.spare.pop();
      slot.worker.postMessage({ id: pending.id, job: pending.job, raw, compressed }, [raw, compressed].filter((b) => b !== undefined));
    }
  }
}

let sharedPool: BlockWorkers | undefined;
/** This thread's block and layout code has been warmed up (once per process: it stays optimized). */
let blocksWarm = false;
let layoutWarm = false;

/** The process's pool, started on first use. */
export function blockWorkers(): BlockWorkers {
  return (sharedPool ??= new BlockWorkers());
}

/** How large the coming layer is expected to be (the last image of the same service: builder/cache/layer-hint). */
export interface ExpectedLayer {
  files: number;
  tarBytes: number;
}

/**
 * Gets a layer build ready ahead of time (`slipway build` calls it while the pipeline's stages run), to
 * the measure of the layer expected: for one that stays in this thread (a few MiB), nothing; otherwise
 * it starts the workers, makes the block buffers and warms up this thread's compression path, and for
 * one of many files its tar layout too. With no expectation (a service's first build), all but the
 * layout. Settles when the workers are up. Not from the TypeScript sources (tests): there a worker
 * first loads tsx (~300 ms of CPU), more than it saves for the small layers most tests build; large
 * layers still start the pool.
 */
export async function prepareBlockWorkers(opts: { evenFromSource?: boolean; expected?: ExpectedLayer } = {}): Promise<void> {
  if (import.meta.url.endsWith('.ts') && !opts.evenFromSource) return;
  const { expected } = opts;
  if (expected && expected.tarBytes <= IN_PROCESS_MAX_BLOCKS * BLOCK_BYTES) return;
  const pool = blockWorkers();
  // In steps, with turns of the event loop between them: the stages are starting meanwhile.
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  pool.prefill(MAX_SPARE_BUFFERS / 2);
  if (!blocksWarm) {
    blocksWarm = true;
    await turn();
    warmUpBlocks();
  }
  // The workers warm up as they start, under the budget the process has (tiering.ts); this thread's layout only after.
  await pool.ready();
  if (!layoutWarm && expected && expected.files >= LAYOUT_WARM_UP_MIN_FILES) {
    layoutWarm = true;
    await withDefaultTiering(async () => {
      const layoutRound = layoutWarmUp(lstatSync(new URL(import.meta.url)));
      for (let round = 0; round < LAYOUT_WARM_UP_ROUNDS; round++) {
        await turn();
        layoutRound();
      }
    });
  }
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
