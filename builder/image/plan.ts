/**
 * The layer's tar laid out before a byte of it is read: where every entry's header (tar.ts) and, from
 * the sizes the walk saw, each file's bytes go. An entry whose name fits ustar's 100 bytes has a 512-byte
 * header, written by the worker that fills its block, straight into the block; only longer ones (with a
 * pax header) are written up front, to learn their length. Each 1 MiB compression block is then a list
 * of pieces (headers to write, header bytes, or a range of a file) that a worker thread fills and
 * compresses on its own, so writing headers and reading the files happen on every core too. A file that shrank since the walk is an error (the tar
 * would not match its headers); one that grew is read up to the size its header records. Nothing may
 * write to the context once the build stage is done.
 */
import { closeSync, constants as fsConstants, openSync, readSync } from 'node:fs';
import { SlipwayError } from '../../lib/errors.js';
import type { LayerEntry } from './layer.js';
import { BLOCK_BYTES } from './deflate.js';
import { isPlainHeader, padding, tarHeader, TAR_BLOCK, TAR_END, writePlainHeader, type TarHeaderFields } from './tar.js';

/** Bytes of the tar at `at`: a header (or the end-of-archive blocks), or `length` bytes of a file from `offset`. */
export type Piece = HeaderPiece | FilePiece;
export interface HeaderPiece {
  at: number;
  length: number;
  /** A header written up front (a pax header and its entry's), or the end-of-archive blocks. */
  bytes?: Uint8Array;
  /** A plain (512-byte) header, written into the block by the worker. */
  header?: TarHeaderFields;
}
export interface FilePiece {
  at: number;
  path: string;
  offset: number;
  length: number;
  size: number;
}

export interface TarPlan {
  size: number;
  files: number;
  blocks: number;
  /** Pieces in tar order, `at` absolute. */
  pieces: Piece[];
}

/** What a worker needs for one block: the tar from `start` to the block's end. */
export interface BlockJob {
  index: number;
  start: number;
  length: number;
  last: boolean;
  /** Plain headers to write, and where (relative to `start`, in step). */
  headers: TarHeaderFields[];
  headerAt: number[];
  /** The job's bytes written up front, back to back (one buffer to send to a worker, not one per piece). */
  literal: Uint8Array;
  /** Where each run of `literal` goes: [at, from, length] triples, `at` relative to `start`. */
  literals: number[];
  /** File ranges, `at` relative to `start`. */
  files: FilePiece[];
}

/**
 * The tar laid out entry by entry, as the walk lists them: blocks can be handed out while later entries
 * are still being listed.
 */
export class TarLayout {
  readonly pieces: Piece[] = [];
  size = 0;
  files = 0;
  /** The end-of-archive blocks are laid out: nothing more comes. */
  complete = false;

  constructor(private readonly epochSeconds: number) {}

  add(e: LayerEntry): void {
    const size = e.type === 'file' ? (e.size ?? 0) : 0;
    const header: TarHeaderFields = { path: e.path, type: e.type, mode: e.mode, size, mtimeSeconds: this.epochSeconds, ...(e.type === 'symlink' ? { linkname: e.linkname! } : {}) };
    if (isPlainHeader(e)) {
      this.pieces.push({ at: this.size, length: TAR_BLOCK, header });
      this.size += TAR_BLOCK;
    } else {
      const bytes = tarHeader(header);
      this.pieces.push({ at: this.size, length: bytes.length, bytes });
      this.size += bytes.length;
    }
    if (e.type === 'file') {
      this.files++;
      if (size > 0) this.pieces.push({ at: this.size, path: e.source!, offset: 0, length: size, size });
      this.size += size + padding(size); // the padding stays zero: blocks start zero-filled
    }
  }

  end(): void {
    this.pieces.push({ at: this.size, length: TAR_END.length, bytes: TAR_END });
    this.size += TAR_END.length;
    this.complete = true;
  }

  /** Blocks whose bytes are all laid out (every block, once complete). */
  get readyBlocks(): number {
    return this.complete ? Math.max(1, Math.ceil(this.size / BLOCK_BYTES)) : Math.floor(this.size / BLOCK_BYTES);
  }
}

export function planTar(entries: Iterable<LayerEntry>, epochSeconds: number): TarPlan {
  const layout = new TarLayout(epochSeconds);
  for (const e of entries) layout.add(e);
  layout.end();
  return { size: layout.size, files: layout.files, blocks: layout.readyBlocks, pieces: layout.pieces };
}

/** The pieces (cut to fit, `at` relative) covering block `index`, which must be laid out (TarLayout.readyBlocks). */
export function blockJob(plan: TarPlan | TarLayout, index: number, cursor: { piece: number } = { piece: 0 }): BlockJob {
  const complete = 'complete' in plan ? plan.complete : true;
  const start = index * BLOCK_BYTES;
  const end = Math.min(plan.size, start + BLOCK_BYTES);
  const literalParts: Uint8Array[] = [];
  const literals: number[] = [];
  const files: FilePiece[] = [];
  const headers: TarHeaderFields[] = [];
  const headerAt: number[] = [];
  let literalLength = 0;
  // `cursor` lets a caller walking the blocks in order skip the pieces already behind it.
  while (cursor.piece < plan.pieces.length && pieceEnd(plan.pieces[cursor.piece]!) <= start) cursor.piece++;
  for (let i = cursor.piece; i < plan.pieces.length; i++) {
    const p = plan.pieces[i]!;
    if (p.at >= end) break;
    const from = Math.max(p.at, start);
    const to = Math.min(pieceEnd(p), end);
    if ('header' in p && p.header) {
      // Plain headers are 512 bytes at a 512-byte boundary, never cut by a block (BLOCK_BYTES is a multiple of 512).
      headers.push(p.header);
      headerAt.push(p.at - start);
    } else if (!('path' in p)) {
      const bytes = p.bytes!;
      literalParts.push(from === p.at && to - from === bytes.length ? bytes : bytes.subarray(from - p.at, to - p.at));
      literals.push(from - start, literalLength, to - from);
      literalLength += to - from;
    } else {
      files.push({ at: from - start, path: p.path, offset: p.offset + (from - p.at), length: to - from, size: p.size });
    }
  }
  const literal = new Uint8Array(literalLength);
  let o = 0;
  for (const part of literalParts) {
    literal.set(part, o);
    o += part.length;
  }
  return { index, start, length: end - start, last: complete && end === plan.size, headers, headerAt, literal, literals, files };
}

function pieceEnd(p: Piece): number {
  return p.at + p.length;
}

/**
 * The job's bytes: headers copied, file ranges read straight into place (open, pread, close). `into`: a
 * BLOCK_BYTES buffer of an earlier block to reuse (zeroed first; fresh memory costs a page fault per 4 KiB).
 */
export function fillBlock(job: BlockJob, into?: ArrayBuffer): Buffer {
  const buf = into && into.byteLength >= job.length ? Buffer.from(into, 0, job.length).fill(0) : Buffer.alloc(job.length);
  for (let i = 0; i < job.headers.length; i++) writePlainHeader(buf, job.headerAt[i]!, job.headers[i]!);
  const { literal, literals } = job;
  for (let i = 0; i < literals.length; i += 3) {
    const from = literals[i + 1]!;
    buf.set(literal.subarray(from, from + literals[i + 2]!), literals[i]!);
  }
  for (const p of job.files) {
    let fd: number;
    try {
      fd = openSync(p.path, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0));
    } catch (err) {
      throw changed(p.path, `cannot be read any more (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    try {
      let done = 0;
      while (done < p.length) {
        const n = readSync(fd, buf, p.at + done, p.length - done, p.offset + done);
        if (n === 0) throw changed(p.path, `is shorter than the ${p.size} bytes it had when the context was listed`);
        done += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  return buf;
}

function changed(path: string, what: string): SlipwayError {
  return new SlipwayError('IMAGE_CONTEXT_CHANGED', `${path} ${what}: the image context changed while the image was built; nothing may write to it after the build stage`, 'stalling', { path });
}

/**
 * One round of laying out made-up entries and cutting them into jobs, so this thread has the layout
 * optimized before a real layer arrives: prepareBlockWorkers runs rounds of it while the stages run, under
 * V8's default tiering (tiering.ts). `sample` is a file's lstat, so sizes are numbers of the kind the walk sees.
 */
export function layoutWarmUp(sample: { size: number; mode: number }): () => void {
  const entries: LayerEntry[] = [];
  for (let i = 0; i < 5000; i++) {
    const dir = `app/warm-up/mod${i % 50}`;
    if (i < 50) entries.push({ path: dir, type: 'directory', mode: 0o755 });
    entries.push({ path: `${dir}/file${i}.js`, type: 'file', mode: sample.mode & 0o111 ? 0o755 : 0o644, source: `/warm-up/${dir}/file${i}.js`, size: sample.size });
  }
  return () => {
    const layout = new TarLayout(1_767_225_600);
    const cursor = { piece: 0 };
    let jobs = 0;
    for (const e of entries) {
      layout.add(e);
      while (jobs < layout.readyBlocks) blockJob(layout, jobs++, cursor);
    }
    layout.end();
    while (jobs < layout.readyBlocks) blockJob(layout, jobs++, cursor);
  };
}
