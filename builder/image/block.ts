/** One block of the layer, start to end: its tar bytes read into place, then compressed (deflate.ts). */
import { COMPRESSED_BYTES_MAX, compressBlock } from './deflate.js';
import { fillBlock, type BlockJob } from './plan.js';
import { writePlainHeader } from './tar.js';

export interface ProcessedBlock {
  /** The block's tar bytes. */
  raw: Uint8Array;
  /** Its raw deflate bytes. */
  compressed: Uint8Array;
  /** How many of the two buffers had to be new memory (no spare was given). */
  freshBuffers: number;
}

/** Size of the buffers blocks are read and compressed into: room for a block's tar bytes or its compressed bytes. */
export const BLOCK_BUFFER_BYTES = COMPRESSED_BYTES_MAX;

/**
 * Spare buffers (`BLOCK_BUFFER_BYTES`, of earlier blocks, done with): the tar bytes go into `rawInto`, the
 * compressed ones into `compressedInto`; without them, new memory.
 */
export function processBlock(job: BlockJob, rawInto?: ArrayBuffer, compressedInto?: ArrayBuffer): ProcessedBlock {
  const raw = fillBlock(job, rawInto ?? new ArrayBuffer(BLOCK_BUFFER_BYTES));
  const compressed = compressBlock(raw, job.last, compressedInto ?? new ArrayBuffer(BLOCK_BUFFER_BYTES));
  return { raw, compressed, freshBuffers: (rawInto ? 0 : 1) + (compressedInto ? 0 : 1) };
}

/**
 * Bytes whose ArrayBuffer can be transferred to another thread: small Buffers are slices of Node's shared
 * pool (transferring it would take it from every other Buffer), so those are copied; the large ones this
 * module makes have an ArrayBuffer of their own and go as they are.
 */
export function transferable(bytes: Uint8Array): Uint8Array {
  return bytes.buffer.byteLength > Buffer.poolSize ? bytes : new Uint8Array(bytes);
}

/**
 * Runs the block path (tar headers, compression) on made-up data so V8 has optimized it before real
 * blocks arrive: workers start ahead of the build (prepareBlockWorkers), and a cold thread otherwise
 * spends its first blocks in the interpreter (measured: ~200 ms of CPU more for a 50 MB layer on 2 cores;
 * writing 5,000 headers cold cost 60–100 ms against 13 warm).
 */
export function warmUpBlocks(): void {
  // Blocks travel between threads as transferred ArrayBuffers. The first buffer detached in a thread trips a V8
  // protector, and every function optimized before it is thrown away (deoptimized) and compiled again mid-build:
  // detach one here, first, so the code optimized below stays.
  const detached = new ArrayBuffer(8);
  structuredClone(detached, { transfer: [detached] });
  const sample = Buffer.alloc(256 * 1024);
  let x = 2463534242;
  for (let i = 0; i < sample.length; i++) {
    if (i % 8192 < 4096) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      sample[i] = x & 0xff;
    } else {
      sample[i] = 0x61 + (i % 23);
    }
  }
  const out = new ArrayBuffer(BLOCK_BUFFER_BYTES);
  // Many short calls, not a few long ones: a long loop gets optimized on its own (on-stack replacement), and each
  // block would then start in the unoptimized function again (the one-shot build's budget is large: tiering.ts).
  for (let round = 0; round < 48; round++) compressBlock(sample.subarray((round % 4) * 65536, (round % 4) * 65536 + 65536), round === 47, out);
  const headers = Buffer.from(out);
  for (let i = 0; i < 2000; i++) {
    writePlainHeader(headers, (i % 512) * 512, { path: `app/warm-up/${i}.js`, type: i % 7 ? 'file' : 'directory', mode: 0o644, size: i * 977, mtimeSeconds: 1_767_225_600 });
  }
}
