/**
 * A byte-reproducible tar+gzip layer from a directory: entries sorted by path, every mtime the given
 * epoch, uid/gid 0 with no user names, modes normalized (0755 directories and executables, 0644 other
 * files, 0777 symlinks), gzip at a fixed level with a zero mtime and a fixed OS byte.
 * The deflate bytes come from the zlib Node bundles (`process.versions.zlib`): machines on the same
 * zlib build agree byte for byte; a Node release that changes its zlib changes the layer digest.
 */
import { readFileSync } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, posix, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzip as gzipCallback, constants as zlibConstants } from 'node:zlib';
import type * as tar from 'tar-stream';
import { SlipwayError } from '../../lib/errors.js';
import { computeDigest } from '../../lib/oci/index.js';

const gzip = promisify(gzipCallback);

export const GZIP_LEVEL = 6;
const SYNC_READ_MAX = 1024 * 1024;
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
      const s = await lstat(full);
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

/**
 * Packs the entries as tar and gzips it as a stream: gzip runs on libuv's thread pool while the next
 * files are read and packed, and both digests are computed on the way.
 */
export async function buildLayer(entries: LayerEntry[], epochSeconds: number): Promise<BuiltLayer> {
  const mtime = new Date(epochSeconds * 1000);
  const { pack: createPack } = await import('tar-stream');
  const pack = createPack();
  const gz = createGzip(GZIP_OPTIONS);
  const tarHash = createHash('sha256');
  let tarSize = 0;
  const out: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    const chunk = c as Uint8Array;
    tarHash.update(chunk);
    tarSize += chunk.length;
  });
  gz.on('data', (c: Buffer) => out.push(c));
  const gzDone = pipeline(pack, gz);
  // Entries are queued without waiting for each to drain, so packing and gzip (thread pool) overlap.
  // Small files are read synchronously: for thousands of small files that costs a fifth of the CPU
  // of fs/promises, and nothing else runs while an image is assembled.
  const written: Promise<void>[] = [];
  let files = 0;
  for (const e of entries) {
    const header: tar.Header = {
      name: e.type === 'directory' ? `${e.path}/` : e.path,
      type: e.type,
      mode: e.mode,
      mtime,
      uid: 0,
      gid: 0,
      uname: '',
      gname: '',
      size: 0,
      linkname: '',
      devmajor: 0,
      devminor: 0,
    };
    if (e.type === 'file') {
      // Let gzip take what is packed so far now and then, so the two run side by side.
      if (++files % 256 === 0) await new Promise((r) => setImmediate(r));
      const body = (e.size ?? 0) <= SYNC_READ_MAX ? readFileSync(e.source!) : await readFile(e.source!);
      written.push(new Promise<void>((res, rej) => pack.entry({ ...header, size: body.length }, body, (err) => (err ? rej(err) : res()))));
    } else {
      if (e.type === 'symlink') header.linkname = e.linkname!;
      written.push(new Promise<void>((res, rej) => pack.entry(header, (err) => (err ? rej(err) : res()))));
    }
  }
  await Promise.all(written);
  pack.finalize();
  await gzDone;
  const bytes = Buffer.concat(out);
  bytes[9] = GZIP_OS_UNIX;
  return { bytes, digest: computeDigest(bytes), diffId: `sha256:${tarHash.digest('hex')}`, tarSize, files };
}

/** gzip with fixed settings; the header's mtime is 0 and its OS byte is forced to 3 (Unix) so every platform agrees. */
export async function gzipFixed(data: Buffer): Promise<Buffer> {
  const out = await gzip(data, GZIP_OPTIONS);
  out[9] = GZIP_OS_UNIX;
  return out;
}
