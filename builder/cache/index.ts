/**
 * The build cache under $SLIPWAY_HOME/cache/builds: a record per content-addressed key, and the built
 * images themselves in an OCI layout, so a hit can be pushed to any store without running a stage.
 * The key covers everything the image bytes depend on: the commit's tree and the commit itself (the
 * revision label and the commit time as mtime are in the image), the pipeline file, the stages the
 * conditions select, the source URL label, the timestamp and the builder version.
 * Records are written atomically (temp file + rename) and a build holds a lock file per key, so two
 * concurrent builds of the same key run the stages once: the second waits and reuses the record.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OciLayoutStore, withFileLock, type LockOptions } from '../../lib/oci/index.js';
import { cacheRecordPath, readCacheRecord, type CacheRecord } from './record.js';

export { cacheRecordPath, readCacheRecord, type CacheKeyInput, type CacheRecord } from './record.js';
export { layerHintPath, readLayerHint, writeLayerHint } from './layer-hint.js';
export {
  cacheKey,
  buildCacheRoot,
  resolveBuildInputs,
  findCachedBuild,
  baseResult,
  factsOf,
  type BuildInputs,
  type CachedBuildLookup,
  type FindCachedBuildOptions,
} from './hit.js';

export class BuildCache {
  readonly root: string;
  /** Built images, by digest. */
  readonly images: OciLayoutStore;

  constructor(root: string) {
    this.root = root;
    this.images = new OciLayoutStore(join(root, 'images'));
  }

  private recordPath(key: string): string {
    return cacheRecordPath(this.root, key);
  }

  /** The record for `key` when it is complete: readable, and its image fully in the cache layout. */
  async lookup(key: string): Promise<CacheRecord | undefined> {
    const record = await readCacheRecord(this.root, key);
    if (!record) return undefined;
    try {
      const manifest = await this.images.getManifest(record.digest);
      if (!manifest) return undefined;
      const parsed = JSON.parse(manifest.bytes.toString('utf8')) as { config: { digest: string }; layers: { digest: string }[] };
      for (const d of [parsed.config, ...parsed.layers]) if (!(await this.images.hasBlob(d.digest))) return undefined;
    } catch {
      return undefined;
    }
    return record;
  }

  async store(record: CacheRecord): Promise<void> {
    const path = this.recordPath(record.key);
    await mkdir(join(this.root, 'records'), { recursive: true });
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`);
    try {
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  async forget(key: string): Promise<void> {
    await unlink(this.recordPath(key)).catch(() => undefined);
  }

  /** Runs `fn` holding the lock of `key` (other processes building the same key wait). */
  async withKeyLock<T>(key: string, fn: () => Promise<T>, opts?: LockOptions): Promise<T> {
    await mkdir(join(this.root, 'locks'), { recursive: true });
    return withFileLock(join(this.root, 'locks', `${key.replace(/^sha256:/, '')}.lock`), fn, { timeoutMs: 2 * 60 * 60_000, ...opts });
  }
}
