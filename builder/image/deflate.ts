/**
 * One 1 MiB block of a layer's tar as raw deflate, deciding per 512-byte tar block whether compressing
 * pays. Build output mixes text (JS, CSS, maps: deflate shrinks it several times) with bytes that are
 * already compressed (images, fonts, archives), on which zlib's level 1 spends most of its time (it
 * looks for matches in every byte) to end up emitting stored blocks anyway. Here, segments that look
 * incompressible go out as stored deflate blocks (a copy), the rest through zlib, so the CPU goes where
 * it buys bytes. The choice is a pure function of the block's bytes: the output is byte-reproducible.
 *
 * A segment is "incompressible" when its byte histogram (every second byte sampled) is close to
 * uniform: the sum of squared counts of 256 samples is at most 700, i.e. the bytes look like 150 or
 * more equally likely values (over 7.2 bits per byte, where Huffman coding saves under 10%). Random
 * bytes give 511 on average (standard deviation ~50), English text or code 2,000 and more. Integer
 * arithmetic only, so every machine decides the same. Byte-order statistics do not see repeats of
 * high-entropy data (the same PNG twice within 32 KiB): those are stored, where zlib would have
 * found the repeat; that costs size, never correctness.
 *
 * Runs of compressible segments are deflated by zlib at GZIP_LEVEL and end with a sync flush (byte
 * aligned), so the stored blocks that follow can be written directly. A run at the start of the block
 * gets the 32 KiB before the block as its dictionary (as a whole-block deflate would); a run after a
 * stored run starts without one (what came just before it is incompressible). The last run of the
 * last block ends the stream (Z_FINISH, or a stored block with BFINAL set).
 */
import { endianness } from 'node:os';
import { createDeflateRaw, deflateRawSync, constants as zlibConstants } from 'node:zlib';

/**
 * Fixed, not tunable: changing any of these changes every layer digest (bump IMAGE_FORMAT in
 * builder/version.ts). Level 1 (as go-containerregistry and ko use).
 */
export const GZIP_LEVEL = 1;
/** The tar is compressed in blocks of this size, in parallel; part of the byte format. */
export const BLOCK_BYTES = 1024 * 1024;
export const WINDOW_BYTES = 32 * 1024;
/** The unit of the stored/deflated decision: one tar block. */
export const SEGMENT_BYTES = 512;
const SAMPLE_STRIDE = 2;
const UNIFORM_MAX_SUM_OF_SQUARES = 700;
/** A run of incompressible segments shorter than this is deflated with its neighbours (a zlib call costs more). */
const MIN_STORED_SEGMENTS = 2;
const STORED_MAX = 65_535;
const LITTLE_ENDIAN = endianness() === 'LE';
const ZLIB_OPTIONS = { level: GZIP_LEVEL, memLevel: 8, windowBits: 15, strategy: zlibConstants.Z_DEFAULT_STRATEGY };

/** 1 for a segment that goes out stored, 0 for one zlib compresses; the last, partial segment is always 0. */
export function classifySegments(block: Uint8Array): Uint8Array {
  const segments = Math.ceil(block.length / SEGMENT_BYTES);
  const stored = new Uint8Array(segments);
  const counts = new Uint16Array(256);
  const full = Math.floor(block.length / SEGMENT_BYTES);
  // Little-endian and aligned (always, for the blocks buildLayer makes): bytes 0 and 2 of each 32-bit word are
  // the samples at stride 2, read with half the loads. The sum only grows, so stopping after a pair of samples
  // instead of a single one decides the same.
  const words = LITTLE_ENDIAN && block.byteOffset % 4 === 0 ? new Uint32Array(block.buffer, block.byteOffset, full * (SEGMENT_BYTES / 4)) : undefined;
  for (let s = 0; s < full; s++) {
    counts.fill(0);
    let sumOfSquares = 0;
    if (words) {
      const end = (s + 1) * (SEGMENT_BYTES / 4);
      let i = s * (SEGMENT_BYTES / 4);
      for (; i < end; i++) {
        const w = words[i]!;
        const b0 = w & 0xff;
        const c0 = counts[b0]!;
        sumOfSquares += 2 * c0 + 1; // (c+1)² - c²
        counts[b0] = c0 + 1;
        const b2 = (w >>> 16) & 0xff;
        const c2 = counts[b2]!;
        sumOfSquares += 2 * c2 + 1;
        counts[b2] = c2 + 1;
        if (sumOfSquares > UNIFORM_MAX_SUM_OF_SQUARES) break;
      }
      if (i >= end) stored[s] = 1;
    } else {
      const end = (s + 1) * SEGMENT_BYTES;
      let i = s * SEGMENT_BYTES;
      for (; i < end; i += SAMPLE_STRIDE) {
        const b = block[i]!;
        const c = counts[b]!;
        sumOfSquares += 2 * c + 1;
        counts[b] = c + 1;
        if (sumOfSquares > UNIFORM_MAX_SUM_OF_SQUARES) break;
      }
      if (i >= end) stored[s] = 1;
    }
  }
  return stored;
}

interface Run {
  start: number;
  end: number;
  stored: boolean;
}

function runsOf(block: Uint8Array): Run[] {
  const marks = classifySegments(block);
  const runs: Run[] = [];
  for (let s = 0; s < marks.length; ) {
    let e = s + 1;
    while (e < marks.length && marks[e] === marks[s]) e++;
    const stored = marks[s] === 1 && e - s >= MIN_STORED_SEGMENTS;
    const start = s * SEGMENT_BYTES;
    const end = Math.min(block.length, e * SEGMENT_BYTES);
    const previous = runs[runs.length - 1];
    if (previous && previous.stored === stored) previous.end = end;
    else runs.push({ start, end, stored });
    s = e;
  }
  if (runs.length === 0) runs.push({ start: 0, end: 0, stored: false });
  return runs;
}

/** Raw deflate of `block` (see the module comment). `dictionary`: the up to 32 KiB of tar before it. */
export function compressBlock(block: Uint8Array, dictionary: Uint8Array | undefined, last: boolean): Buffer {
  const runs = runsOf(block);
  // Room for the worst case: every run stored or deflated with its framing (see RunDeflater).
  const out = Buffer.allocUnsafe(block.length + (block.length >> 9) + 80 * runs.length + 64);
  let used = 0;
  const deflater = createRunDeflater();
  try {
    runs.forEach((run, i) => {
      const final = last && i === runs.length - 1;
      if (!run.stored) {
        const data = block.subarray(run.start, run.end);
        if (run.start === 0 && dictionary?.length) {
          const compressed = deflateOnce(data, final, dictionary);
          out.set(compressed, used);
          used += compressed.length;
        } else {
          used += deflater.deflateInto(data, final, out, used);
        }
        return;
      }
      for (let at = run.start; at < run.end; at += STORED_MAX) {
        const length = Math.min(STORED_MAX, run.end - at);
        out[used] = final && at + length === run.end ? 1 : 0; // BFINAL, BTYPE 00 (stored); byte aligned after a sync flush
        out.writeUInt16LE(length, used + 1);
        out.writeUInt16LE(~length & 0xffff, used + 3);
        out.set(block.subarray(at, at + length), used + 5);
        used += 5 + length;
      }
    });
  } finally {
    deflater.close();
  }
  // A well-compressed block would keep the whole allocation alive until the layer is done: copy it out.
  return used < out.length / 2 ? Buffer.from(out.subarray(0, used)) : out.subarray(0, used);
}

function deflateOnce(data: Uint8Array, final: boolean, dictionary?: Uint8Array): Buffer {
  return deflateRawSync(data, {
    ...ZLIB_OPTIONS,
    finishFlush: final ? zlibConstants.Z_FINISH : zlibConstants.Z_SYNC_FLUSH,
    ...(dictionary ? { dictionary } : {}),
  });
}

/** Deflates the runs of one block, one after the other, each as its own raw deflate stream (same settings, no dictionary). */
export interface RunDeflater {
  /** Writes the run's deflate bytes to `out` at `offset` (room for `data.length + data.length/1024 + 64` bytes); returns their length. */
  deflateInto(data: Uint8Array, final: boolean, out: Buffer, offset: number): number;
  close(): void;
}

interface ZlibHandle {
  reset(): void;
  writeSync(flush: number, input: Uint8Array, inOffset: number, inLength: number, output: Uint8Array, outOffset: number, outLength: number): void;
}

/**
 * A layer of many small files has thousands of runs; `deflateRawSync` sets up and tears down a zlib
 * stream for each (~25 µs, as much as compressing 5 KiB). This keeps one stream per block and resets
 * it between runs, through the synchronous handle Node's own `zlib.*Sync` functions use
 * (`_handle.writeSync`, `_writeState`; not public API). Reproducibility: a reset stream keeps stale
 * window bytes past the new data, which zlib may read (never copy) near the end of the input; they are
 * the block's own earlier runs, in the same order on every machine and whatever thread compresses the
 * block, so the bytes stay a function of the block. On a Node without that handle every run gets a
 * fresh stream (`deflateRawSync`), which could differ in rare matches at a run's end: layer digests
 * already depend on the Node's zlib (layer.ts).
 */
export function createRunDeflater(): RunDeflater {
  const stream = createDeflateRaw(ZLIB_OPTIONS);
  const internals = stream as unknown as { _handle?: ZlibHandle; _writeState?: Uint32Array };
  const handle = internals._handle;
  const state = internals._writeState;
  const close = () => stream.close();
  if (!handle || typeof handle.writeSync !== 'function' || typeof handle.reset !== 'function' || !(state instanceof Uint32Array)) {
    return {
      deflateInto: (data, final, out, offset) => {
        const compressed = deflateOnce(data, final);
        out.set(compressed, offset);
        return compressed.length;
      },
      close,
    };
  }
  let used = false;
  return {
    deflateInto(data, final, out, offset) {
      // Raw deflate never grows data by more than 5 bytes per 16 KiB stored block plus a few for the flush.
      const room = Math.min(out.length - offset, data.length + (data.length >> 10) + 64);
      if (used) handle.reset();
      used = true;
      handle.writeSync(final ? zlibConstants.Z_FINISH : zlibConstants.Z_SYNC_FLUSH, data, 0, data.length, out, offset, room);
      const availableOut = state[0]!;
      const availableIn = state[1]!;
      if (availableOut === 0 || availableIn !== 0) throw new Error(`zlib left ${availableIn} bytes of a ${data.length}-byte run unconsumed`);
      return room - availableOut;
    },
    close,
  };
}
