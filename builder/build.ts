/**
 * `build()`: a service repository at a commit → pipeline stages in a clean checkout → a reproducible
 * OCI image → pushed by digest. A cache hit skips the stages and pushes the recorded image. Steps:
 *   resolve source → read + check pipeline → cache key → [hit: ensure in store] | [lock → checkout →
 *   stages → image → cache → push] → afterPush hook (signing/attestation) → result.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { SlipwayError } from '../lib/errors.js';
import { slipwayHome } from '../lib/home.js';
import { openImageStore, pushImage, type ImageStore, type OpenStoreOptions } from '../lib/oci/index.js';
import { baseResult, BuildCache, buildCacheRoot, factsOf, layerHintPath, readLayerHint, resolveBuildInputs, writeLayerHint } from './cache/index.js';
import { buildImage, prepareImageBuild, type BuiltImage } from './image/index.js';
import { runPipeline, type Clock, type PipelineEvent, type StageResult } from './pipeline/index.js';
import { checkoutCommit } from './source/index.js';

export type BuildEvent =
  | PipelineEvent
  | { type: 'resolved'; commit: string; tree: string; branch?: string; cacheKey: string }
  | { type: 'cache-hit'; digest: string; key: string }
  | { type: 'waiting-for-build'; key: string; pid: number }
  | { type: 'image-built'; digest: string; files: number; layerBytes: number }
  | { type: 'pushed'; imageRef: string; cached: boolean };

export interface BuildResult {
  /** `repository@sha256:…` */
  imageRef: string;
  repository: string;
  digest: string;
  /** True when the stages were skipped because the cache had this build. */
  cached: boolean;
  cacheKey: string;
  source: { repoDir: string; url: string; commit: string; tree: string; branch?: string; commitTime: number };
  pipeline: { name: string; file: string; digest: string };
  builder: { id: string; version: string };
  /** When the stages ran (for a cache hit: the recorded original run). */
  startedAt: string;
  finishedAt: string;
  stages: StageResult[];
  image: { configDigest: string; layerDigest: string; files?: number; layerBytes?: number };
  /** Where this run's stage logs are (undefined for a cache hit). */
  logDir?: string;
}

export interface BuildOptions {
  /** The service repository (a git working tree or bare repository). */
  repoDir: string;
  /** Any revision git understands; default HEAD. */
  commit?: string;
  /** The branch the build is for (conditions); default the checked-out branch when it points at the commit. */
  branch?: string;
  /** Where the image goes: an ImageStore, or `oci:<dir>` / `host:port/name`. */
  store: ImageStore | string;
  storeOptions?: OpenStoreOptions;
  /** Also tag the image in the store (a convenience; deployments always use the digest). */
  tag?: string;
  /** The caller's environment: PATH, HOME and SLIPWAY_* reach the stages; SOURCE_DATE_EPOCH sets the timestamp. */
  env?: NodeJS.ProcessEnv;
  /** Cache and logs root; default $SLIPWAY_HOME. */
  home?: string;
  /** Skip the cache lookup (the result is still recorded). */
  noCache?: boolean;
  clock?: Clock;
  onEvent?: (event: BuildEvent) => void;
  signal?: AbortSignal;
  /** Per-shard stage log cap. */
  maxLogBytes?: number;
  /**
   * Runs once the image is in the store (built or from cache), before build() returns: the place to
   * sign and attach provenance. Its failure fails the build.
   */
  afterPush?: (result: BuildResult, ctx: { store: ImageStore }) => Promise<void>;
}

/** SLIPWAY_* variables that hold secrets never reach a stage. */
const SECRET_NAME = /PASSWORD|TOKEN|SECRET|PRIVATE|_KEY$/;

export async function build(opts: BuildOptions): Promise<BuildResult> {
  const clock = opts.clock ?? { now: () => Date.now() };
  const env = opts.env ?? process.env;
  const home = opts.home ?? slipwayHome(env);
  const cacheRoot = buildCacheRoot(home);
  const { source, pipeline, epoch, keyInput, key } = await resolveBuildInputs({
    repoDir: opts.repoDir,
    ...(opts.commit ? { commit: opts.commit } : {}),
    ...(opts.branch ? { branch: opts.branch } : {}),
    env,
    cacheRoot,
  });
  opts.onEvent?.({ type: 'resolved', commit: source.commit, tree: source.tree, ...(source.branch ? { branch: source.branch } : {}), cacheKey: key });
  const store = typeof opts.store === 'string' ? openImageStore(opts.store, opts.storeOptions) : opts.store;
  const cache = new BuildCache(cacheRoot);

  const fromCache = async (): Promise<BuildResult | undefined> => {
    const record = await cache.lookup(key);
    if (!record) return undefined;
    opts.onEvent?.({ type: 'cache-hit', digest: record.digest, key });
    await copyImage(cache.images, store, record.digest, opts.tag);
    return {
      ...baseResult(source, pipeline, store.repository, record.digest, key),
      cached: true,
      startedAt: record.startedAt,
      finishedAt: record.createdAt,
      stages: record.stages,
      image: { configDigest: record.configDigest, layerDigest: record.layerDigest },
    };
  };

  let result = opts.noCache ? undefined : await fromCache();
  if (!result) {
    result = await cache.withKeyLock(
      key,
      async () => (opts.noCache ? undefined : await fromCache()) ?? (await buildFresh()),
      { onWait: (holder) => opts.onEvent?.({ type: 'waiting-for-build', key, pid: holder.pid }) },
    );
  }
  opts.onEvent?.({ type: 'pushed', imageRef: result.imageRef, cached: result.cached });
  if (opts.afterPush) await opts.afterPush(result, { store });
  return result;

  async function buildFresh(): Promise<BuildResult> {
    const startedAt = new Date(clock.now()).toISOString();
    const logDir = join(home, 'builds', key.slice(7, 23), 'logs');
    await rm(logDir, { recursive: true, force: true });
    const work = await mkdtemp(join(tmpdir(), 'slipway-build-'));
    // The layer's worker threads start, and their buffers are made, while the stages run (seconds), not after:
    // as much as the last image of this service needed.
    const hintPath = layerHintPath(cacheRoot, { sourceUrl: source.sourceUrl, pipeline: pipeline.name });
    void readLayerHint(hintPath)
      .then((expected) => prepareImageBuild(expected ? { expected } : {}))
      .catch(() => undefined);
    try {
      const checkout = join(work, 'src');
      await checkoutCommit(source, checkout);
      const run = await runPipeline({
        pipeline,
        workDir: checkout,
        logDir,
        facts: factsOf(source),
        baseEnv: { PATH: env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: env.HOME ?? work },
        slipwayEnv: {
          ...Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[0].startsWith('SLIPWAY_') && !SECRET_NAME.test(e[0]) && e[1] !== undefined)),
          SLIPWAY_COMMIT: source.commit,
          SLIPWAY_TREE: source.tree,
          SLIPWAY_BRANCH: source.branch ?? '',
          SLIPWAY_SOURCE_DATE_EPOCH: String(epoch),
        },
        ...(opts.maxLogBytes ? { maxLogBytes: opts.maxLogBytes } : {}),
        clock,
        ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      if (run.status === 'failed') {
        throw new SlipwayError('STAGE_FAILED', run.failure!.message, 'stalling', { stage: run.failure!.stage, stages: run.stages, logDir, tail: run.failure!.tail });
      }
      if (run.status === 'cancelled') throw new SlipwayError('BUILD_CANCELLED', 'the build was cancelled; nothing was pushed', 'generic', { stages: run.stages });

      const contextDir = resolve(checkout, pipeline.image.context);
      if (contextDir !== checkout && !contextDir.startsWith(checkout + sep)) {
        throw new SlipwayError('IMAGE_CONTEXT_UNSAFE', `image context ${pipeline.image.context} is outside the checkout`, 'stalling');
      }
      const image: BuiltImage = await buildImage({ contextDir, spec: pipeline.image, source: { url: source.sourceUrl, revision: source.commit }, epoch, uploadTo: [store, cache.images] });
      opts.onEvent?.({ type: 'image-built', digest: image.digest, files: image.layer.files, layerBytes: image.layer.size });
      await writeLayerHint(hintPath, { files: image.layer.files, tarBytes: image.layer.tarSize });
      await pushImage(cache.images, image);
      const finishedAt = new Date(clock.now()).toISOString();
      await cache.store({ key, digest: image.digest, input: keyInput, stages: run.stages, startedAt, createdAt: finishedAt, layerDigest: image.layer.digest, configDigest: image.configDigest });
      await pushImage(store, image, opts.tag);
      return {
        ...baseResult(source, pipeline, store.repository, image.digest, key),
        cached: false,
        startedAt,
        finishedAt,
        stages: run.stages,
        image: { configDigest: image.configDigest, layerDigest: image.layer.digest, files: image.layer.files, layerBytes: image.layer.size },
        logDir,
      };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
}

/** Copies an image by digest between stores, skipping blobs the target has. */
export async function copyImage(from: ImageStore, to: ImageStore, digest: string, tag?: string): Promise<void> {
  if (!tag && (await to.getManifest(digest))) return;
  const manifest = await from.getManifest(digest);
  if (!manifest) throw new SlipwayError('MANIFEST_NOT_FOUND', `image ${digest} is not in ${from.repository}`, 'stalling');
  const parsed = JSON.parse(manifest.bytes.toString('utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  const blobs = [];
  for (const d of [parsed.config, ...parsed.layers]) {
    if (await to.hasBlob(d.digest)) continue;
    blobs.push({ digest: d.digest, bytes: await from.getBlob(d.digest) });
  }
  const pushed = await pushImage(to, { manifestBytes: manifest.bytes, mediaType: manifest.mediaType, blobs }, tag);
  if (pushed !== digest) throw new SlipwayError('DIGEST_MISMATCH', `copied manifest hashes to ${pushed}, expected ${digest}`, 'stalling');
}
