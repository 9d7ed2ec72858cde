/**
 * An OCI image layout directory (image-spec `image-layout.md`): `oci-layout`, `index.json`,
 * `blobs/sha256/<hex>`. Tags are `org.opencontainers.image.ref.name` annotations in index.json.
 * Blob writes are temp file + rename, so concurrent writers of the same blob are safe; index.json
 * updates happen under a lock file.
 */
import { mkdir, open, readFile, rename, writeFile, access, unlink } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { SlipwayError } from '../errors.js';
import { assertDigest, computeDigest, isDigest, verifyDigest } from './digest.js';
import { withFileLock } from './lock.js';
import { MEDIA_TYPES, type BlobUpload, type Descriptor, type FetchedManifest, type ImageStore } from './types.js';

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export class OciLayoutStore implements ImageStore {
  readonly repository: string;
  readonly root: string;
  private ready: Promise<void> | undefined;

  constructor(path: string) {
    this.root = resolve(path);
    this.repository = `oci:${this.root}`;
  }

  async hasBlob(digest: string): Promise<boolean> {
    assertDigest(digest);
    return access(this.blobPath(digest)).then(
      () => true,
      () => false,
    );
  }

  async putBlob(digest: string, data: Uint8Array): Promise<void> {
    assertDigest(digest);
    await this.init();
    if (await this.hasBlob(digest)) return;
    verifyDigest(data, digest, `blob for ${this.repository}`);
    await atomicWrite(this.blobPath(digest), data);
  }

  /** A blob written as it is made: to a temp file beside the blobs, hashed, renamed to its digest on `finish`. */
  async startBlobUpload(): Promise<BlobUpload> {
    await this.init();
    const tmp = join(this.root, 'blobs', 'sha256', `.upload-${process.pid}-${randomBytes(6).toString('hex')}`);
    const file = await open(tmp, 'wx');
    const hash = createHash('sha256');
    let size = 0;
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await file.close();
    };
    return {
      write: async (chunk) => {
        // Positioned: writes may overlap, and each must land where its bytes go.
        const at = size;
        size += chunk.length;
        hash.update(chunk);
        for (let done = 0; done < chunk.length; ) done += (await file.write(chunk, done, chunk.length - done, at + done)).bytesWritten;
      },
      finish: async (digest, total) => {
        assertDigest(digest);
        try {
          await close();
          const actual = `sha256:${hash.digest('hex')}`;
          if (actual !== digest || total !== size) {
            throw new SlipwayError('DIGEST_MISMATCH', `blob for ${this.repository}: the ${size} bytes written hash to ${actual}, not ${digest} (${total} bytes)`, 'stalling', { expected: digest, actual });
          }
          await rename(tmp, this.blobPath(digest));
        } catch (err) {
          await unlink(tmp).catch(() => undefined);
          throw err;
        }
      },
      abort: async () => {
        await close().catch(() => undefined);
        await unlink(tmp).catch(() => undefined);
      },
    };
  }

  async getBlob(digest: string): Promise<Buffer> {
    assertDigest(digest);
    let bytes: Buffer;
    try {
      bytes = await readFile(this.blobPath(digest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new SlipwayError('BLOB_NOT_FOUND', `blob ${digest} is not in ${this.repository}`, 'stalling', { digest, repository: this.repository });
      }
      throw err;
    }
    verifyDigest(bytes, digest, `blob ${digest} in ${this.repository}`);
    return bytes;
  }

  async putManifest(bytes: Uint8Array, mediaType: string, tag?: string): Promise<string> {
    const digest = computeDigest(bytes);
    const parsed = parseJson(bytes, `manifest ${digest}`) as { layers?: Descriptor[]; config?: Descriptor; manifests?: Descriptor[]; artifactType?: string; subject?: Descriptor };
    // Nothing half-pushed: every blob the manifest names must already be here.
    const referenced = [...(parsed.config ? [parsed.config] : []), ...(parsed.layers ?? []), ...(parsed.manifests ?? [])];
    for (const d of referenced) {
      if (!(await this.hasBlob(d.digest))) {
        throw new SlipwayError('BLOB_UNKNOWN', `manifest ${digest} names ${d.digest}, which is not in ${this.repository}; push the blobs first`, 'stalling', { digest: d.digest });
      }
    }
    await this.init();
    await atomicWrite(this.blobPath(digest), bytes);
    await this.updateIndex((index) => {
      const entry: Descriptor = { mediaType, digest, size: bytes.length };
      if (parsed.artifactType) entry.artifactType = parsed.artifactType;
      if (tag) {
        // A tag names one manifest: drop it from wherever it was.
        index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== tag);
        entry.annotations = { [REF_NAME_ANNOTATION]: tag };
        index.manifests.push(entry);
      } else if (!index.manifests.some((m) => m.digest === digest)) {
        index.manifests.push(entry);
      }
    });
    return digest;
  }

  async getManifest(reference: string): Promise<FetchedManifest | undefined> {
    const index = await this.readIndex();
    let digest = reference;
    let mediaType: string | undefined;
    if (isDigest(reference)) {
      mediaType = index.manifests.find((m) => m.digest === reference)?.mediaType;
    } else {
      const entry = index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === reference);
      if (!entry) return undefined;
      digest = entry.digest;
      mediaType = entry.mediaType;
    }
    if (!(await this.hasBlob(digest))) return undefined;
    const bytes = await this.getBlob(digest);
    if (!mediaType) {
      const parsed = parseJson(bytes, `manifest ${digest}`) as { mediaType?: string };
      mediaType = parsed.mediaType ?? MEDIA_TYPES.imageManifest;
    }
    return { digest, mediaType, bytes };
  }

  async listTags(): Promise<string[]> {
    const index = await this.readIndex();
    const tags = index.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION]).filter((t): t is string => !!t);
    return [...new Set(tags)].sort();
  }

  /** The layout has no referrers API; it is answered by scanning the manifests index.json lists. */
  async referrers(digest: string, artifactType?: string): Promise<Descriptor[] | undefined> {
    assertDigest(digest);
    const index = await this.readIndex();
    const out: Descriptor[] = [];
    const seen = new Set<string>();
    for (const entry of index.manifests) {
      if (seen.has(entry.digest)) continue;
      seen.add(entry.digest);
      const bytes = await readFile(this.blobPath(entry.digest)).catch(() => undefined);
      if (!bytes) continue;
      let m: { subject?: Descriptor; artifactType?: string; config?: Descriptor; annotations?: Record<string, string>; mediaType?: string };
      try {
        m = JSON.parse(bytes.toString('utf8'));
      } catch {
        continue;
      }
      if (m.subject?.digest !== digest) continue;
      const type = m.artifactType ?? m.config?.mediaType;
      if (artifactType && type !== artifactType) continue;
      const d: Descriptor = { mediaType: m.mediaType ?? entry.mediaType, digest: entry.digest, size: bytes.length };
      if (type) d.artifactType = type;
      if (m.annotations) d.annotations = m.annotations;
      out.push(d);
    }
    return out;
  }

  private blobPath(digest: string): string {
    return join(this.root, 'blobs', 'sha256', digest.slice('sha256:'.length));
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
      const layoutFile = join(this.root, 'oci-layout');
      if (!(await exists(layoutFile))) await atomicWrite(layoutFile, Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
      const indexFile = join(this.root, 'index.json');
      if (!(await exists(indexFile))) {
        await withFileLock(`${indexFile}.lock`, async () => {
          if (!(await exists(indexFile))) await atomicWrite(indexFile, Buffer.from(JSON.stringify(emptyIndex(), null, 2)));
        });
      }
    })();
    return this.ready;
  }

  private async readIndex(): Promise<ImageIndex> {
    let text: string;
    try {
      text = await readFile(join(this.root, 'index.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyIndex();
      throw err;
    }
    const index = parseJson(Buffer.from(text), `${join(this.root, 'index.json')}`) as ImageIndex;
    if (!Array.isArray(index.manifests)) {
      throw new SlipwayError('INVALID_LAYOUT', `${join(this.root, 'index.json')} has no "manifests" array; it is not an OCI image layout index`, 'stalling');
    }
    return index;
  }

  private async updateIndex(change: (index: ImageIndex) => void): Promise<void> {
    const indexFile = join(this.root, 'index.json');
    await withFileLock(`${indexFile}.lock`, async () => {
      const index = await this.readIndex();
      change(index);
      await atomicWrite(indexFile, Buffer.from(JSON.stringify(index, null, 2)));
    });
  }
}

function emptyIndex(): ImageIndex {
  return { schemaVersion: 2, mediaType: MEDIA_TYPES.imageIndex, manifests: [] };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function atomicWrite(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new SlipwayError('INVALID_JSON', `${what} is not valid JSON: ${(err as Error).message}`, 'stalling');
  }
}
