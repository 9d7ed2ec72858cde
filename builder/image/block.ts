/** One block of the layer, start to end: its tar bytes read into place, then compressed (deflate.ts). */
import { compressBlock } from './deflate.js';
import { fillBlock, type BlockJob } from './plan.js';

export interface ProcessedBlock {
  /** The job's tar bytes: the dictionary (`job.dictionaryLength` bytes), then the block. */
  raw: Uint8Array;
  compressed: Uint8Array;
}

export function processBlock(job: BlockJob): ProcessedBlock {
  const raw = fillBlock(job);
  const dictionary = job.dictionaryLength > 0 ? raw.subarray(0, job.dictionaryLength) : undefined;
  return { raw, compressed: compressBlock(raw.subarray(job.dictionaryLength), dictionary, job.last) };
}

/**
 * Bytes whose ArrayBuffer can be transferred to another thread: small Buffers are slices of Node's shared
 * pool (transferring it would take it from every other Buffer), so those are copied; the large ones this
 * module makes have an ArrayBuffer of their own and go as they are.
 */
export function transferable(bytes: Uint8Array): Uint8Array {
  return bytes.buffer.byteLength > Buffer.poolSize ? bytes : new Uint8Array(bytes);
}
