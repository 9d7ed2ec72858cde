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

/**
 * What a worker needs for one block: the tar from `start` to the block's end. Packed into typed arrays and
 * NUL-separated strings rather than an object per entry: a job goes to a worker by structured clone, which
 * costs per object (serializing ~100 header and file objects per block was ~20 ms of the calling thread's
 * CPU for 5,000 files; no POSIX path holds a NUL).
 */
export interface BlockJob {
  index: number;
  start: number;
  length: number;
  last: boolean;
  /** Plain headers to write: where (relative to `start`), what kind (HEADER_KINDS), mode, size, mtime. */
  headerAt: Int32Array;
  headerKind: Uint8Array;
  headerMode: Uint16Array;
  headerSize: Float64Array;
  headerMtime: Float64Array;
  /** Each header's path, then for a symlink its target, each followed by a NUL. */
  headerText: string;
  /** The job's bytes written up front, back to back (one buffer to send to a worker, not one per piece). */
  literal: Uint8Array;
  /** Where each run of `literal` goes: [at, from, length] triples, `at` relative to `start`. */
  literals: Int32Array;
  /** File ranges: where in the block, from which offset of the file, how many bytes, the file's size. */
  fileAt: Int32Array;
  fileOffset: Float64Array;
  fileLength: Int32Array;
  fileSize: Float64Array;
  /** The files' paths, each followed by a NUL. */
  filePaths: string;
}

const HEADER_KINDS: readonly TarHeaderFields['type'][] = ['file', 'directory', 'symlink'];

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
    const header: TarHeaderFields = { path: e.path, type: e.type, mode: e.mode, size, mtimeSeconds: this.epochSeconds, linkname: e.type === 'symlink' ? e.linkname! : '' };
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
  const headerAt: number[] = [];
  const headerKind: number[] = [];
  const headerMode: number[] = [];
  const headerSize: number[] = [];
  const headerMtime: number[] = [];
  let headerText = '';
  const fileAt: number[] = [];
  const fileOffset: number[] = [];
  const fileLength: number[] = [];
  const fileSize: number[] = [];
  let filePaths = '';
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
      const h = p.header;
      headerAt.push(p.at - start);
      headerKind.push(HEADER_KINDS.indexOf(h.type));
      headerMode.push(h.mode);
      headerSize.push(h.size);
      headerMtime.push(h.mtimeSeconds);
      headerText += h.type === 'symlink' ? `${h.path}\0${h.linkname ?? ''}\0` : `${h.path}\0`;
    } else if (!('path' in p)) {
      const bytes = p.bytes!;
      literalParts.push(from === p.at && to - from === bytes.length ? bytes : bytes.subarray(from - p.at, to - p.at));
      literals.push(from - start, literalLength, to - from);
      literalLength += to - from;
    } else {
      fileAt.push(from - start);
      fileOffset.push(p.offset + (from - p.at));
      fileLength.push(to - from);
      fileSize.push(p.size);
      filePaths += `${p.path}\0`;
    }
  }
  const literal = new Uint8Array(literalLength);
  let o = 0;
  for (const part of literalParts) {
    literal.set(part, o);
    o += part.length;
  }
  return {
    index,
    start,
    length: end - start,
    last: complete && end === plan.size,
    headerAt: Int32Array.from(headerAt),
    headerKind: Uint8Array.from(headerKind),
    headerMode: Uint16Array.from(headerMode),
    headerSize: Float64Array.from(headerSize),
    headerMtime: Float64Array.from(headerMtime),
    headerText,
    literal,
    literals: Int32Array.from(literals),
    fileAt: Int32Array.from(fileAt),
    fileOffset: Float64Array.from(fileOffset),
    fileLength: Int32Array.from(fileLength),
    fileSize: Float64Array.from(fileSize),
    filePaths,
  };
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
  const headerText = nulSeparated(job.headerText);
  for (let i = 0; i < job.headerAt.length; i++) {
    const type = HEADER_KINDS[job.headerKind[i]!]!;
    const path = headerText();
    const linkname = type === 'symlink' ? headerText() : '';
    writePlainHeader(buf, job.headerAt[i]!, { path, type, mode: job.headerMode[i]!, size: job.headerSize[i]!, mtimeSeconds: job.headerMtime[i]!, linkname });
  }
  const { literal, literals } = job;
  for (let i = 0; i < literals.length; i += 3) {
    const from = literals[i + 1]!;
    buf.set(literal.subarray(from, from + literals[i + 2]!), literals[i]!);
  }
  const filePath = nulSeparated(job.filePaths);
  for (let i = 0; i < job.fileAt.length; i++) {
    const path = filePath();
    const at = job.fileAt[i]!;
    const offset = job.fileOffset[i]!;
    const length = job.fileLength[i]!;
    let fd: number;
    try {
      fd = openSync(path, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0));
    } catch (err) {
      throw changed(path, `cannot be read any more (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    try {
      let done = 0;
      while (done < length) {
        const n = readSync(fd, buf, at + done, length - done, offset + done);
        if (n === 0) throw changed(path, `is shorter than the ${job.fileSize[i]!} bytes it had when the context was listed`);
        done += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  return buf;
}

/** Reads `text` one NUL-terminated value at a time, in order. */
function nulSeparated(text: string): () => string {
  let at = 0;
  return () => {
    const nul = text.indexOf('\0', at);
    const value = text.slice(at, nul);
    at = nul + 1;
    return value;
  };
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
