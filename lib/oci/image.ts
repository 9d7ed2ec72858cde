/** Whole images: push (blobs first, manifest last) and pull (every blob verified), and unpacking layers. */
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { lstat, mkdir, rm, symlink, link, writeFile, chmod, realpath, readdir } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep, posix } from 'node:path';
import { SlipwayError } from '../errors.js';
import { assertDigest, computeDigest } from './digest.js';
import { MEDIA_TYPES, type Descriptor, type ImageManifest, type ImageStore } from './types.js';

export interface ImageConfig {
  architecture?: string;
  os?: string;
  created?: string;
  config?: {
    Entrypoint?: string[];
    Cmd?: string[];
    Env?: string[];
    WorkingDir?: string;
    ExposedPorts?: Record<string, object>;
    Labels?: Record<string, string>;
    User?: string;
  };
  rootfs?: { type: 'layers'; diff_ids: string[] };
  history?: unknown[];
}

export interface PulledLayer {
  descriptor: Descriptor;
  bytes: Buffer;
}

export interface PulledImage {
  digest: string;
  manifest: ImageManifest;
  manifestBytes: Buffer;
  config: ImageConfig;
  configBytes: Buffer;
  layers: PulledLayer[];
}

/**
 * A built image ready to push: every blob by digest, the manifest bytes last. A blob without bytes was
 * already written to the stores it is meant for (a layer streamed while it was built): pushing it
 * elsewhere fails.
 */
export interface ImageToPush {
  manifestBytes: Uint8Array;
  mediaType?: string;
  blobs: {
    digest: string;
    bytes?: Uint8Array;
    /** Stores that confirmed this blob while the image was built (their upload's commit answered): not asked again. */
    storedIn?: readonly ImageStore[];
  }[];
}

/**
 * Pushes every blob (skipping those present; each store confirms a blob it was sent), then the manifest.
 * A failure before the manifest leaves nothing that names the image, so nothing half-pushed can be
 * reported as pushed.
 */
export async function pushImage(store: ImageStore, image: ImageToPush, tag?: string): Promise<string> {
  for (const blob of image.blobs) {
    if (blob.storedIn?.includes(store)) continue;
    if (blob.bytes) await store.putBlob(blob.digest, blob.bytes);
    else if (!(await store.hasBlob(blob.digest))) {
      throw new SlipwayError('BLOB_NOT_AVAILABLE', `blob ${blob.digest} was streamed to other stores while it was built and is not in ${store.repository}; build with this store as a target`, 'stalling', { digest: blob.digest, repository: store.repository });
    }
  }
  return store.putManifest(image.manifestBytes, image.mediaType ?? MEDIA_TYPES.imageManifest, tag);
}

/** The manifest, config and layers of `digest`, each verified against its digest and size. */
export async function pullImage(store: ImageStore, digest: string): Promise<PulledImage> {
  assertDigest(digest, 'image digest');
  const fetched = await store.getManifest(digest);
  if (!fetched) {
    throw new SlipwayError('MANIFEST_NOT_FOUND', `image ${store.repository}@${digest} does not exist`, 'stalling', { repository: store.repository, digest });
  }
  if (fetched.digest !== digest) {
    throw new SlipwayError('DIGEST_MISMATCH', `manifest ${digest} from ${store.repository} hashes to ${fetched.digest}; refusing it`, 'stalling', { expected: digest, actual: fetched.digest });
  }
  let manifest: ImageManifest;
  try {
    manifest = JSON.parse(fetched.bytes.toString('utf8')) as ImageManifest;
  } catch {
    throw new SlipwayError('INVALID_MANIFEST', `manifest ${digest} from ${store.repository} is not JSON`, 'stalling');
  }
  if (!manifest.config || !Array.isArray(manifest.layers)) {
    throw new SlipwayError('INVALID_MANIFEST', `${store.repository}@${digest} is not an image manifest (media type ${fetched.mediaType})`, 'stalling');
  }
  const configBytes = await getSized(store, manifest.config);
  let config: ImageConfig;
  try {
    config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
  } catch {
    throw new SlipwayError('INVALID_MANIFEST', `config ${manifest.config.digest} of ${store.repository}@${digest} is not JSON`, 'stalling');
  }
  const layers: PulledLayer[] = [];
  for (const descriptor of manifest.layers) layers.push({ descriptor, bytes: await getSized(store, descriptor) });
  return { digest, manifest, manifestBytes: fetched.bytes, config, configBytes, layers };
}

async function getSized(store: ImageStore, d: Descriptor): Promise<Buffer> {
  const bytes = await store.getBlob(d.digest);
  if (bytes.length !== d.size) {
    throw new SlipwayError('SIZE_MISMATCH', `blob ${d.digest} in ${store.repository} is ${bytes.length} bytes, the manifest says ${d.size}; refusing it`, 'stalling');
  }
  return bytes;
}

export interface UnpackOptions {
  /** Remove `dir` first (default false: unpack over what is there). */
  clean?: boolean;
}

/**
 * Applies layers in order into `dir`. Refuses entries that would land outside it: absolute or `..`
 * paths, absolute symlinks, symlinks or hard links pointing outside, and writes through a symlink.
 * OCI whiteouts (`.wh.<name>`, `.wh..wh..opq`) delete what lower layers put there.
 */
export async function unpackLayers(layers: { descriptor?: Descriptor; bytes: Uint8Array }[], dir: string, opts: UnpackOptions = {}): Promise<void> {
  const root = resolve(dir);
  if (opts.clean) await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const realRoot = await realpath(root);
  for (const layer of layers) await unpackLayer(layer.bytes, realRoot, layer.descriptor);
}

async function unpackLayer(bytes: Uint8Array, root: string, descriptor: Descriptor | undefined): Promise<void> {
  const what = descriptor ? `layer ${descriptor.digest}` : 'layer';
  const gz = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  // tar-stream is loaded here, on first unpack, so pushing and pulling do not pay for it.
  const { extract: createExtract } = await import('tar-stream');
  const extract = createExtract();
  const source = Readable.from([Buffer.from(bytes)]);
  const done = pipeline(gz ? [source, createGunzip(), extract] : [source, extract] as never);
  const refuse = (name: string, why: string) =>
    new SlipwayError('UNSAFE_LAYER', `${what}: refusing entry "${name}": ${why}`, 'stalling', { entry: name, digest: descriptor?.digest });
  const pending: Promise<void> = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      const name = h.name;
      const normal = posix.normalize(name.replace(/^\.\/+/, ''));
      if (isAbsolute(name) || name.startsWith('/')) throw refuse(name, 'absolute path');
      if (normal === '..' || normal.startsWith('../') || normal.split('/').includes('..')) throw refuse(name, 'path escapes the target directory');
      const dest = resolve(root, normal);
      if (dest !== root && !dest.startsWith(root + sep)) throw refuse(name, 'path escapes the target directory');
      await assertNoSymlinkParents(root, dirname(dest), () => refuse(name, 'a parent directory is a symlink'));
      const base = posix.basename(normal);
      if (base.startsWith('.wh.')) {
        entry.resume();
        if (base === '.wh..wh..opq') {
          await clearDir(dirname(dest));
        } else {
          await rm(join(dirname(dest), base.slice(4)), { recursive: true, force: true });
        }
        continue;
      }
      const mode = (h.mode ?? 0o644) & 0o7777;
      switch (h.type) {
        case 'directory':
          entry.resume();
          if (dest === root) continue;
          await mkdir(dest, { recursive: true });
          await chmod(dest, mode | 0o700);
          break;
        case 'file':
        case 'contiguous-file':
        case undefined:
        case null: {
          const chunks: Buffer[] = [];
          for await (const c of entry) chunks.push(c as Buffer);
          await mkdir(dirname(dest), { recursive: true });
          await rm(dest, { force: true, recursive: true });
          await writeFile(dest, Buffer.concat(chunks), { mode });
          await chmod(dest, mode);
          break;
        }
        case 'symlink': {
          entry.resume();
          const target = h.linkname ?? '';
          if (!target || isAbsolute(target)) throw refuse(name, `absolute symlink target "${target}"`);
          const resolved = resolve(dirname(dest), target);
          if (resolved !== root && !resolved.startsWith(root + sep)) throw refuse(name, `symlink target "${target}" points outside`);
          await mkdir(dirname(dest), { recursive: true });
          await rm(dest, { force: true, recursive: true });
          await symlink(target, dest);
          break;
        }
        case 'link': {
          entry.resume();
          const target = posix.normalize((h.linkname ?? '').replace(/^\.\/+/, ''));
          const src = resolve(root, target);
          if (!target || isAbsolute(h.linkname ?? '') || (src !== root && !src.startsWith(root + sep))) throw refuse(name, `hard link target "${h.linkname}" points outside`);
          await mkdir(dirname(dest), { recursive: true });
          await rm(dest, { force: true, recursive: true });
          await link(src, dest);
          break;
        }
        default:
          // Devices, fifos and the like have no place in a service image; skip them.
          entry.resume();
      }
    }
  })();
  try {
    await Promise.all([done, pending]);
  } catch (err) {
    extract.destroy();
    if (err instanceof SlipwayError) throw err;
    throw new SlipwayError('INVALID_LAYER', `${what} could not be unpacked: ${(err as Error).message}`, 'stalling', { digest: descriptor?.digest }, { cause: err });
  }
}

async function assertNoSymlinkParents(root: string, dir: string, refuse: () => Error): Promise<void> {
  const rel = relative(root, dir);
  if (!rel) return;
  let current = root;
  for (const part of rel.split(sep)) {
    current = join(current, part);
    const st = await lstat(current).catch(() => undefined);
    if (!st) return;
    if (st.isSymbolicLink()) throw refuse();
  }
}

async function clearDir(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.map((n) => rm(join(dir, n), { recursive: true, force: true })));
}

/** Digest and bytes of a JSON value as stored (for configs and manifests built by hand). */
export function jsonBlob(value: unknown, serialize: (v: unknown) => string = (v) => JSON.stringify(v)): { digest: string; bytes: Buffer; size: number } {
  const bytes = Buffer.from(serialize(value));
  return { digest: computeDigest(bytes), bytes, size: bytes.length };
}
