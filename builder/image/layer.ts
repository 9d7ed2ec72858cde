/**
 * A byte-reproducible tar+gzip layer from a directory: entries in a fixed order (entriesOf), every mtime the given
 * epoch, uid/gid 0 with no user names, modes normalized (0755 directories and executables, 0644 other
 * files, 0777 symlinks), one gzip member with a zero mtime and a fixed OS byte, its deflate stream made
 * per 1 MiB block (deflate.ts: stored where compressing does not pay, zlib level 1 elsewhere).
 * The deflate bytes come from the zlib Node bundles (`process.versions.zlib`): machines on the same
 * zlib build agree byte for byte; a Node release that changes its zlib changes the layer digest.
 */
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { posix, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { crc32, gzip as gzipCallback, constants as zlibConstants } from 'node:zlib';
import { SlipwayError } from '../../lib/errors.js';
import { processBlock, type ProcessedBlock } from './block.js';
import { GZIP_LEVEL } from './deflate.js';
import { blockJob, TarLayout, type BlockJob } from './plan.js';
import { blockWorkers, IN_PROCESS_MAX_BLOCKS } from './workers.js';

export { BLOCK_BYTES, GZIP_LEVEL } from './deflate.js';

const SURROGATE = /[\uD800-\uDFFF]/;
const MAX_BLOCKS_AHEAD = 8;

const gzip = promisify(gzipCallback);

const GZIP_OPTIONS = { level: GZIP_LEVEL, memLevel: 8, windowBits: 15, strategy: zlibConstants.Z_DEFAULT_STRATEGY, chunk: 64 * 1024 };
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

/** A layer made and sent somewhere as it was made (streamLayer): what names it, not its bytes. */
export interface StreamedLayer {
  digest: string;
  /** Size of the gzip bytes. */
  size: number;
  /** sha256 of the uncompressed tar: the config's rootfs diff_id. */
  diffId: string;
  /** Size of the uncompressed tar. */
  tarSize: number;
  files: number;
}

export interface BuiltLayer extends StreamedLayer {
  /** gzip bytes (what is pushed). */
  bytes: Buffer;
}

/**
 * Every entry under `dir`, placed under `prefix` (e.g. `app`), in tar order (entriesOf), as a list.
 */
export async function collectEntries(dir: string, prefix = ''): Promise<LayerEntry[]> {
  return [...(await entriesOf(dir, prefix))];
}

/**
 * The entries under `dir`, placed under `prefix`, listed lazily as they are taken (the layer lays out
 * and compresses its first blocks while the rest of the context is still being listed). Order: parents
 * first, depth first, each directory's entries by the UTF-8 bytes of their names: the same on every
 * machine and locale, whatever order the files were written in. Fails at once when `dir` is missing;
 * an unsafe entry (a symlink out of the context, a socket) fails when the walk reaches it.
 */
export async function entriesOf(dir: string, prefix = ''): Promise<Iterable<LayerEntry>> {
  const root = resolve(dir);
  const st = await lstat(root).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new SlipwayError('IMAGE_CONTEXT_MISSING', `the image context ${root} does not exist or is not a directory; the build stage must create it`, 'stalling', { context: root });
  }
  const parts = prefix.split('/').filter(Boolean);
  return walkContext(root, parts);
}

// Synchronous: thousands of small stats through the thread pool cost more in round trips than in work.
function* walkContext(root: string, parts: string[]): Generator<LayerEntry> {
  for (let i = 1; i <= parts.length; i++) yield { path: parts.slice(0, i).join('/'), type: 'directory', mode: 0o755 };
  const base = parts.join('/');
  function* walk(abs: string, rel: string): Generator<LayerEntry> {
    for (const d of byName(readdirSync(abs, { withFileTypes: true }))) {
      const full = `${abs}/${d.name}`; // abs is absolute (resolve); path.join would normalize it again per entry
      const relPath = rel ? `${rel}/${d.name}` : d.name;
      const path = base ? `${base}/${relPath}` : relPath;
      if (d.isDirectory()) {
        yield { path, type: 'directory', mode: 0o755 };
        yield* walk(full, relPath);
      } else if (d.isFile()) {
        const s = lstatSync(full);
        yield { path, type: 'file', mode: s.mode & 0o111 ? 0o755 : 0o644, source: full, size: s.size };
      } else if (d.isSymbolicLink()) {
        const target = readlinkSync(full);
        const landing = posix.normalize(posix.join(posix.dirname(relPath), target));
        if (posix.isAbsolute(target) || landing === '..' || landing.startsWith('../')) {
          throw new SlipwayError(
            'IMAGE_CONTEXT_UNSAFE',
            `${relPath} in the image context is a symlink to ${target}, outside the context; copy the file instead`,
            'stalling',
            { path: relPath, target },
          );
        }
        yield { path, type: 'symlink', mode: 0o777, linkname: target };
      } else {
        throw new SlipwayError('IMAGE_CONTEXT_UNSAFE', `${relPath} in the image context is not a file, directory or symlink (a socket or device?); remove it in the build stage`, 'stalling', { path: relPath });
      }
    }
  }
  yield* walk(root, '');
}

/**
 * Directory entries by the UTF-8 bytes of their names. Without surrogate pairs (characters past U+FFFF),
 * JavaScript's UTF-16 comparison is that order already; with them, the bytes are compared.
 */
function byName<T extends { name: string }>(entries: T[]): T[] {
  if (!entries.some((e) => SURROGATE.test(e.name))) return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const keyed = entries.map((e) => ({ key: Buffer.from(e.name), e }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return keyed.map((k) => k.e);
}

/**
 * Where compressed layer bytes go as they are made, in order (e.g. a registry upload running alongside).
 * streamLayer reuses a chunk's memory once the promise the sink returned for it settles.
 */
export type LayerSink = (chunk: Buffer) => void | Promise<void>;

/** Chunks handed to a sink and not yet settled before the layer waits for the oldest: bounds the memory a slow upload holds. */
const MAX_UNSETTLED_CHUNKS = 8;

/**
 * The layer's gzip bytes, kept. `sink`, when given, sees each chunk as it is made; the chunks it gets are
 * never reused, and the layer neither waits for it nor stops when it fails (the bytes are kept anyway).
 */
export async function buildLayer(entries: Iterable<LayerEntry>, epochSeconds: number, sink?: LayerSink): Promise<BuiltLayer> {
  const kept: Buffer[] = [];
  const layer = await makeLayer(entries, epochSeconds, (chunk, release) => {
    // A block buffer is ~1.2 MiB; one that compressed well is copied out (and goes round) rather than held whole.
    const keep = release && chunk.length < chunk.buffer.byteLength / 2 ? Buffer.from(chunk) : chunk;
    if (keep !== chunk) release!();
    kept.push(keep);
    const sent = sink?.(keep);
    if (sent) sent.catch(() => undefined);
  });
  return { ...layer, bytes: Buffer.concat(kept, layer.size) };
}

/**
 * The layer sent to `sink` and not kept: block buffers are reused as soon as the sink has settled
 * their chunk, so a layer of any size is made in a few MiB that are already mapped. A sink that
 * rejects stops the layer (rejecting with its error).
 */
export async function streamLayer(entries: Iterable<LayerEntry>, epochSeconds: number, sink: LayerSink): Promise<StreamedLayer> {
  const unsettled: Promise<void>[] = [];
  let failure: { error: unknown } | undefined;
  const layer = await makeLayer(entries, epochSeconds, async (chunk, release) => {
    if (failure) throw failure.error;
    const sent = Promise.resolve(sink(chunk)).then(
      () => release?.(),
      (error: unknown) => {
        failure ??= { error };
      },
    );
    unsettled.push(sent);
    if (unsettled.length > MAX_UNSETTLED_CHUNKS) await unsettled.shift();
  });
  await Promise.all(unsettled);
  if (failure) throw failure.error;
  return layer;
}

/**
 * Packs the entries as tar and gzips it the way pigz does, on worker threads (workers.ts): the tar is
 * laid out entry by entry as they are listed (plan.ts), cut into fixed 1 MiB blocks, and each block,
 * once laid out, is read from disk and compressed by a worker on its own (deflate.ts: stored deflate
 * blocks for incompressible segments, zlib at GZIP_LEVEL for the rest, a sync flush at its end), while
 * this thread lists further. The pieces are joined under one gzip header and trailer (CRC-32 and length
 * of the whole tar): one ordinary gzip member whose bytes depend only on the tar and the fixed settings,
 * never on scheduling. This thread hashes the tar (diff_id), the gzip (digest) and computes the CRC as
 * blocks come back in order, and hands each compressed piece to `emit` while later blocks are still
 * being compressed, with `release` when the piece is in a block buffer that may go round again once the
 * caller is done with it. `emit` may return a promise to make the layer wait (backpressure).
 */
async function makeLayer(entries: Iterable<LayerEntry>, epochSeconds: number, emit: (chunk: Buffer, release?: () => void) => void | Promise<void>): Promise<StreamedLayer> {
  const layout = new TarLayout(epochSeconds);
  const listing = entries[Symbol.iterator]();
  /** Lists and lays out entries until `blocks` blocks are laid out, or the context is all listed. */
  const layOut = (blocks: number) => {
    while (!layout.complete && layout.readyBlocks < blocks) {
      const next = listing.next();
      if (next.done) layout.end();
      else layout.add(next.value);
    }
  };
  const tarHash = createHash('sha256');
  const gzHash = createHash('sha256');
  let gzSize = 0;
  const send = async (chunk: Buffer, release?: () => void) => {
    gzHash.update(chunk);
    gzSize += chunk.length;
    await emit(chunk, release);
  };
  await send(gzipHeader());

  // Small layers stay in this thread: handing blocks to workers costs more.
  layOut(IN_PROCESS_MAX_BLOCKS + 1);
  const pool = layout.readyBlocks > IN_PROCESS_MAX_BLOCKS ? blockWorkers() : undefined;
  const cursor = { piece: 0 };
  const jobs: BlockJob[] = [];
  const results: Promise<ProcessedBlock>[] = [];
  const ready: boolean[] = [];
  // Blocks are handed out at most MAX_BLOCKS_AHEAD beyond the one being hashed: the tar in flight stays a
  // few MiB however large the layer, and a failed block does not leave the rest of a huge layer queued.
  const dispatchUpTo = (end: number) => {
    for (let i = jobs.length; i < Math.min(end, layout.readyBlocks); i++) {
      const job = blockJob(layout, i, cursor);
      jobs.push(job);
      const result = pool ? pool.run(job) : Promise.resolve().then(() => processBlock(job));
      result.then(
        () => (ready[i] = true),
        () => (ready[i] = true), // awaited in order below; this also keeps an early exit from leaving the rest unhandled
      );
      results.push(result);
    }
  };
  const letOthersMove = () => new Promise<void>((r) => setImmediate(r)); // finished blocks, worker messages, the upload
  let crc = 0;
  for (let i = 0; !layout.complete || i < layout.readyBlocks; i++) {
    layOut(i + 1);
    if (layout.complete && i >= layout.readyBlocks) break;
    dispatchUpTo(i + MAX_BLOCKS_AHEAD);
    while (!ready[i]) {
      // While block i is being compressed elsewhere: list further so the workers have blocks, else compress a queued one here.
      if (!layout.complete && layout.readyBlocks < i + MAX_BLOCKS_AHEAD) {
        layOut(layout.readyBlocks + 1);
        dispatchUpTo(i + MAX_BLOCKS_AHEAD);
        await letOthersMove();
        continue;
      }
      const stolen = pool?.steal();
      if (!stolen) break;
      try {
        const block = processBlock(stolen.job, pool?.spareBuffer(), pool?.spareBuffer());
        if (pool) pool.freshBuffers += block.freshBuffers;
        stolen.resolve(block);
      } catch (err) {
        stolen.reject(err);
      }
      await letOthersMove();
    }
    const { raw, compressed } = await results[i]!;
    tarHash.update(raw);
    crc = crc32(raw, crc);
    pool?.recycle(raw.buffer);
    const piece = Buffer.from(compressed.buffer, compressed.byteOffset, compressed.byteLength);
    await send(piece, pool ? () => pool.recycle(compressed.buffer) : undefined);
  }
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(layout.size % 2 ** 32, 4);
  await send(trailer);
  return { digest: `sha256:${gzHash.digest('hex')}`, size: gzSize, diffId: `sha256:${tarHash.digest('hex')}`, tarSize: layout.size, files: layout.files };
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
