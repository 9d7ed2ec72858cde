/**
 * A byte-reproducible tar+gzip layer from a directory: entries sorted by path, every mtime the given
 * epoch, uid/gid 0 with no user names, modes normalized (0755 directories and executables, 0644 other
 * files, 0777 symlinks), gzip at a fixed level with a zero mtime and a fixed OS byte.
 * The deflate bytes come from the zlib Node bundles (`process.versions.zlib`): machines on the same
 * zlib build agree byte for byte; a Node release that changes its zlib changes the layer digest.
 */
import { lstatSync, readFileSync } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, posix, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { crc32, deflateRaw as deflateRawCallback, gzip as gzipCallback, constants as zlibConstants, type ZlibOptions } from 'node:zlib';
import { SlipwayError } from '../../lib/errors.js';
import { padding, tarHeader, TAR_BLOCK, TAR_END } from './tar.js';

const gzip = promisify(gzipCallback);
const deflateRaw = promisify(deflateRawCallback) as (buf: Buffer, options: ZlibOptions) => Promise<Buffer>;

/**
 * Fixed, not tunable: changing any of these changes every layer digest (bump IMAGE_FORMAT in
 * builder/version.ts). Level 1 (as go-containerregistry and ko use): build output is often half
 * already-compressed assets, where higher levels cost several times the CPU for a few percent.
 */
export const GZIP_LEVEL = 1;
/** The tar is compressed in blocks of this size, in parallel; part of the byte format. */
export const BLOCK_BYTES = 1024 * 1024;
const WINDOW_BYTES = 32 * 1024;
const SYNC_READ_MAX = 1024 * 1024;
const ZEROS = Buffer.alloc(TAR_BLOCK);
const GZIP_OPTIONS = { level: GZIP_LEVEL, memLevel: 8, windowBits: 15, strategy: zlibConstants.Z_DEFAULT_STRATEGY, chunk: 64 * 1024 };
const DEFLATE_OPTIONS = { level: GZIP_LEVEL, memLevel: 8, windowBits: 15, strategy: zlibConstants.Z_DEFAULT_STRATEGY, chunk: 256 * 1024 };
/** Byte 9 of the gzip header names the OS that wrote it; zlib sets it per platform, we fix it. */
const GZIP_OS_UNIX = 3;

export interface LayerEntry {
  /** Path inside the image, relative, `/`-separated, no trailing slash. */
  path: string;
  type: 'directory' | 'file' | 'symlink';
  mode: number;
  /** Absolute path on disk (files). */
  source?: string;
  /** Bytes (files). */
  size?: number;
  linkname?: string;
}

export interface BuiltLayer {
  /** gzip bytes (what is pushed). */
  bytes: Buffer;
  digest: string;
  /** sha256 of the uncompressed tar: the config's rootfs diff_id. */
  diffId: string;
  /** Size of the uncompressed tar. */
  tarSize: number;
  files: number;
}

/** Every entry under `dir`, placed under `prefix` (e.g. `app`), parents first, sorted by path. */
export async function collectEntries(dir: string, prefix = ''): Promise<LayerEntry[]> {
  const root = resolve(dir);
  const st = await lstat(root).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new SlipwayError('IMAGE_CONTEXT_MISSING', `the image context ${root} does not exist or is not a directory; the build stage must create it`, 'stalling', { context: root });
  }
  const entries: LayerEntry[] = [];
  const parts = prefix.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) entries.push({ path: parts.slice(0, i).join('/'), type: 'directory', mode: 0o755 });
  const base = parts.join('/');

  const walk = async (abs: string): Promise<void> => {
    const names = (await readdir(abs)).sort();
    for (const name of names) {
      const full = join(abs, name);
      const rel = relative(root, full).split(sep).join('/');
      const path = base ? `${base}/${rel}` : rel;
      // Synchronous: thousands of small stats through the thread pool cost more in round trips than in work.
      const s = lstatSync(full);
      if (s.isDirectory()) {
        entries.push({ path, type: 'directory', mode: 0o755 });
        await walk(full);
      } else if (s.isFile()) {
        entries.push({ path, type: 'file', mode: s.mode & 0o111 ? 0o755 : 0o644, source: full, size: s.size });
      } else if (s.isSymbolicLink()) {
        const target = await readlink(full);
        const landing = posix.normalize(posix.join(posix.dirname(rel), target));
        if (posix.isAbsolute(target) || landing === '..' || landing.startsWith('../')) {
          throw new SlipwayError(
            'IMAGE_CONTEXT_UNSAFE',
            `${rel} in the image context is a symlink to ${target}, outside the context; copy the file instead`,
            'stalling',
            { path: rel, target },
          );
        }
        entries.push({ path, type: 'symlink', mode: 0o777, linkname: target });
      } else {
        throw new SlipwayError('IMAGE_CONTEXT_UNSAFE', `${rel} in the image context is not a file, directory or symlink (a socket or device?); remove it in the build stage`, 'stalling', { path: rel });
      }
    }
  };
  await walk(root);
  // Byte order of the UTF-8 paths, the same on every machine and locale.
  return entries.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/** Where compressed layer bytes go as they are made, in order (e.g. a registry upload running alongside). */
export type LayerSink = (chunk: Buffer) => void;

/**
 * Packs the entries as tar (headers from tar.ts) and gzips it the way pigz does: the tar is cut into fixed 1 MiB blocks, each
 * raw-deflated on libuv's thread pool with the 32 KiB before it as its dictionary (all blocks at once, so
 * every core compresses), every block but the last ended with a sync flush, and the pieces joined under
 * one gzip header and trailer (CRC-32 and length of the whole tar). The result is one ordinary gzip
 * member; its bytes depend only on the tar, the block size and the zlib settings, never on scheduling.
 * The tar's sha256 (diff_id), the gzip's sha256 (digest) and the CRC are each computed in one pass as
 * the bytes go by; `sink` receives the gzip bytes in order while later blocks are still compressing.
 */
export async function buildLayer(entries: LayerEntry[], epochSeconds: number, sink?: LayerSink): Promise<BuiltLayer> {
  const tarHash = createHash('sha256');
  const gzHash = createHash('sha256');
  const out: Buffer[] = [];
  let gzSize = 0;
  const emit = (chunk: Buffer) => {
    gzHash.update(chunk);
    out.push(chunk);
    gzSize += chunk.length;
    sink?.(chunk);
  };
  emit(gzipHeader());

  let crc = 0;
  let tarSize = 0;
  // The tar is copied once, into fresh fixed-size blocks (a dispatched block is never written again).
  let block = Buffer.allocUnsafe(BLOCK_BYTES);
  let filled = 0;
  let previousTail: Buffer | undefined;
  const compressed: Promise<Buffer>[] = [];
  // Blocks are written out in order as soon as each and those before it are done.
  let written = Promise.resolve();
  const dispatch = (data: Buffer, last: boolean) => {
    tarHash.update(data);
    crc = crc32(data, crc);
    const job = deflateRaw(data, {
      ...DEFLATE_OPTIONS,
      finishFlush: last ? zlibConstants.Z_FINISH : zlibConstants.Z_SYNC_FLUSH,
      ...(previousTail ? { dictionary: previousTail } : {}),
    });
    compressed.push(job);
    written = written.then(async () => emit(await job));
    written.catch(() => undefined); // awaited at the end; this only keeps an early exit from leaving it unhandled
    previousTail = data.subarray(Math.max(0, data.length - WINDOW_BYTES));
  };
  const take = (chunk: Uint8Array) => {
    tarSize += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(chunk.length - offset, BLOCK_BYTES - filled);
      block.set(chunk.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === BLOCK_BYTES) {
        dispatch(block, false);
        block = Buffer.allocUnsafe(BLOCK_BYTES);
        filled = 0;
      }
    }
  };

  // Small files are read synchronously: for thousands of small files that costs a fifth of the CPU of
  // fs/promises, and nothing else runs while an image is assembled; every 256 files the loop yields so
  // finished blocks move on to the sink.
  let files = 0;
  for (const e of entries) {
    if (e.type === 'file') {
      if (++files % 256 === 0) await new Promise((r) => setImmediate(r));
      const body = (e.size ?? 0) <= SYNC_READ_MAX ? readFileSync(e.source!) : await readFile(e.source!);
      take(tarHeader({ path: e.path, type: 'file', mode: e.mode, size: body.length, mtimeSeconds: epochSeconds }));
      take(body);
      const pad = padding(body.length);
      if (pad) take(ZEROS.subarray(0, pad));
    } else {
      take(tarHeader({ path: e.path, type: e.type, mode: e.mode, size: 0, mtimeSeconds: epochSeconds, ...(e.type === 'symlink' ? { linkname: e.linkname! } : {}) }));
    }
  }
  take(TAR_END);
  dispatch(block.subarray(0, filled), true);
  await Promise.all(compressed);
  await written;
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(tarSize % 2 ** 32, 4);
  emit(trailer);
  const bytes = Buffer.concat(out, gzSize);
  return { bytes, digest: `sha256:${gzHash.digest('hex')}`, diffId: `sha256:${tarHash.digest('hex')}`, tarSize, files };
}

/** The 10-byte gzip header zlib writes at GZIP_LEVEL, with mtime 0 and the OS byte fixed to Unix. */
function gzipHeader(): Buffer {
  // Magic, deflate, no flags, mtime 0, XFL (4: fastest, what zlib writes at level 1; 2 at level 9; else 0), OS.
  const xfl = GZIP_LEVEL === 1 ? 4 : GZIP_LEVEL === 9 ? 2 : 0;
  return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, GZIP_OS_UNIX]);
}

/** gzip with fixed settings; the header's mtime is 0 and its OS byte is forced to 3 (Unix) so every platform agrees. */
export async function gzipFixed(data: Buffer): Promise<Buffer> {
  const out = await gzip(data, GZIP_OPTIONS);
  out[9] = GZIP_OS_UNIX;
  return out;
}
