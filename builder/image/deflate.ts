/**
 * One 1 MiB block of a layer's tar as raw deflate, deciding per 512-byte tar block whether compressing
 * pays. Build output mixes text (JS, CSS, maps: deflate shrinks it several times) with bytes that are
 * already compressed (images, fonts, archives), on which zlib's level 1 spends most of its time (it
 * looks for matches in every byte) to end up emitting stored blocks anyway. Here, segments that look
 * incompressible go out as stored deflate blocks (a copy), the rest through zlib, so the CPU goes where
 * it buys bytes. The choice is a pure function of the block's bytes: the output is byte-reproducible.
 *
 * A segment is "incompressible" when its byte histogram is close to uniform: 128 bytes are sampled,
 * one per 32-bit word with the lane turning (byte 0 of word 0, byte 1 of word 1, ...: a column of a
 * 2- or 4-byte record format is not sampled alone), and the sum of their squared counts is at most
 * 240, i.e. the bytes look like 160 or more equally likely values (over 7.3 bits per byte, where
 * Huffman coding saves under 9%). Random bytes give 191.5 on average (above 240 once in ~6,000
 * segments: that segment is deflated, costing a little CPU), English text or code 400 and more,
 * base64 over 310. Integer arithmetic only, so every machine decides the same. Byte-order statistics
 * do not see repeats of high-entropy data (the same PNG twice within 32 KiB): those are stored, where
 * zlib would have found the repeat; that costs size, never correctness.
 *
 * Runs of compressible segments are deflated by zlib at GZIP_LEVEL and end with a sync flush (byte
 * aligned), so the stored blocks that follow can be written directly. Every run starts a fresh deflate
 * window (no dictionary, not even across blocks: a block is a function of its own bytes, and a worker
 * needs nothing from the block before). The last run of the last block ends the stream (Z_FINISH, or a
 * stored block with BFINAL set).
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
/** The unit of the stored/deflated decision: one tar block. */
export const SEGMENT_BYTES = 512;
/** Samples per segment: one per 32-bit word. */
const SAMPLES = SEGMENT_BYTES / 4;
const UNIFORM_MAX_SUM_OF_SQUARES = 240;
/** A run of incompressible segments shorter than this is deflated with its neighbours (a zlib call costs more). */
const MIN_STORED_SEGMENTS = 2;
const STORED_MAX = 65_535;
const LITTLE_ENDIAN = endianness() === 'LE';
const ZLIB_OPTIONS = { level: GZIP_LEVEL, memLevel: 8, windowBits: 15, strategy: zlibConstants.Z_DEFAULT_STRATEGY };

/** 1 for a segment that goes out stored, 0 for one zlib compresses; the last, partial segment is always 0. */
export function classifySegments(block: Uint8Array): Uint8Array {
  const segments = Math.ceil(block.length / SEGMENT_BYTES);
  const stored = new Uint8Array(segments);
  const counts = new Uint8Array(256);
  const full = Math.floor(block.length / SEGMENT_BYTES);
  // Little-endian and aligned (always, for the blocks buildLayer makes): sample k is byte k % 4 of word k, one
  // load and a shift. The sum only grows, so stopping as soon as it passes the bound decides the same.
  const words = LITTLE_ENDIAN && block.byteOffset % 4 === 0 ? new Uint32Array(block.buffer, block.byteOffset, full * SAMPLES) : undefined;
  for (let s = 0; s < full; s++) {
    counts.fill(0);
    let sumOfSquares = 0;
    const first = s * SAMPLES;
    let k = 0;
    if (words) {
      for (; k < SAMPLES; k++) {
        const b = (words[first + k]! >>> ((k & 3) << 3)) & 0xff;
        const c = counts[b]!;
        sumOfSquares += 2 * c + 1; // (c+1)² - c²
        counts[b] = c + 1;
        if (sumOfSquares > UNIFORM_MAX_SUM_OF_SQUARES) break;
      }
    } else {
      const base = s * SEGMENT_BYTES;
      for (; k < SAMPLES; k++) {
        const b = block[base + 4 * k + (k & 3)]!;
        const c = counts[b]!;
        sumOfSquares += 2 * c + 1;
        counts[b] = c + 1;
        if (sumOfSquares > UNIFORM_MAX_SUM_OF_SQUARES) break;
      }
    }
    if (k >= SAMPLES) stored[s] = 1;
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

/** Room for any block's compressed bytes (the worst case: every segment its own run). */
export const COMPRESSED_BYTES_MAX = compressedRoom(BLOCK_BYTES, BLOCK_BYTES / SEGMENT_BYTES);

function compressedRoom(length: number, runs: number): number {
  // Stored: 5 bytes per 64 KiB; deflated: at most 5 bytes per 16 KiB plus the flush (see RunDeflater).
  return length + (length >> 9) + 80 * runs + 64;
}

/**
 * Raw deflate of `block` (see the module comment), written into `into` when it has room (a buffer of an
 * earlier block: fresh memory costs a page fault per 4 KiB), else into new memory. The result is a view.
 */
export function compressBlock(block: Uint8Array, last: boolean, into?: ArrayBuffer): Buffer {
  const runs = runsOf(block);
  const room = compressedRoom(block.length, runs.length);
  const out = into && into.byteLength >= room ? Buffer.from(into, 0, room) : Buffer.allocUnsafe(room);
  let used = 0;
  // One zlib stream per block (not per thread: see createRunDeflater), reset between runs.
  const deflater = createRunDeflater();
  try {
    runs.forEach((run, i) => {
      const final = last && i === runs.length - 1;
      if (!run.stored) {
        used += deflater.deflateInto(block.subarray(run.start, run.end), final, out, used);
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
  return out.subarray(0, used);
}

function deflateOnce(data: Uint8Array, final: boolean): Buffer {
  return deflateRawSync(data, { ...ZLIB_OPTIONS, finishFlush: final ? zlibConstants.Z_FINISH : zlibConstants.Z_SYNC_FLUSH });
}

/** Deflates runs one after the other, each as its own raw deflate stream (same settings, no dictionary). */
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
 * stream for each (~25 µs, as much as compressing 5 KiB). This keeps one stream and resets it between
 * runs, through the synchronous handle Node's own `zlib.*Sync` functions use (`_handle.writeSync`,
 * `_writeState`; not public API). Reproducibility: a reset stream keeps stale window bytes past the new
 * data, which zlib compares (never copies) when it looks for a match near the end of the input, so they
 * can change which match it picks; the stream is therefore one per block, never one per thread: the
 * stale bytes are the block's own earlier runs, in the same order whatever thread compresses the block,
 * and the bytes stay a function of the block. On a Node without that handle every run gets a fresh
 * stream (`deflateRawSync`), which could differ in rare matches at a run's end: layer digests already
 * depend on the Node's zlib (layer.ts).
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
