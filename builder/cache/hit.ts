/**
 * What a build is keyed by, and the cache hit with as little loaded as possible: the commit and the
 * pipeline file come from one round of git calls, a pipeline validated before is read from its memo
 * (no schema compiler), the record from its file, and the target store is asked only whether it holds
 * the recorded manifest. Nothing here imports the image builder, the stage runner or a signer, so
 * `slipway build` on an unchanged commit answers without loading them.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SlipwayError } from '../../lib/errors.js';
import { slipwayHome } from '../../lib/home.js';
import { canonicalJson, computeDigest, formatImageRef, OciLayoutStore, probeManifest, type ImageStore, type RegistryOptions } from '../../lib/oci/index.js';
import type { PipelineConfig } from '../../schemas/index.js';
import type { BuildResult } from '../build.js';
import { imageEpoch } from '../image/epoch.js';
import { evaluateCondition, parsePipeline, pipelineFromConfig, PIPELINE_FILE, type Pipeline } from '../pipeline/index.js';
import { resolveSourceWithFile, type SourceCommit } from '../source/index.js';
import { BUILDER_ID, BUILDER_VERSION } from '../version.js';
import { readCacheRecord, type CacheKeyInput } from './record.js';

export interface BuildInputs {
  source: SourceCommit;
  pipeline: Pipeline;
  /** Seconds since the epoch: the image's mtimes and `created`. */
  epoch: number;
  keyInput: CacheKeyInput;
  key: string;
}

export function cacheKey(input: CacheKeyInput): string {
  return computeDigest(canonicalJson({ v: 1, ...input }));
}

/** The directory of records, memos, locks and cached images under a Slipway home. */
export function buildCacheRoot(home: string): string {
  return join(home, 'cache', 'builds');
}

/** The commit, its checked pipeline, and the cache key of building it. */
export async function resolveBuildInputs(opts: { repoDir: string; commit?: string; branch?: string; env?: NodeJS.ProcessEnv; cacheRoot: string }): Promise<BuildInputs> {
  const env = opts.env ?? process.env;
  const { source, file } = await resolveSourceWithFile({ repoDir: opts.repoDir, rev: opts.commit ?? 'HEAD', ...(opts.branch ? { branch: opts.branch } : {}) }, PIPELINE_FILE);
  const pipeline = await loadPipeline(source, file, opts.cacheRoot);
  const epoch = imageEpoch(source.commitTime, env);
  const plan = pipeline.stages.filter((s) => !s.condition || evaluateCondition(s.condition.parsed, factsOf(source))).map((s) => s.name);
  const keyInput: CacheKeyInput = {
    builderVersion: BUILDER_VERSION,
    tree: source.tree,
    commit: source.commit,
    pipelineDigest: pipeline.digest,
    plan,
    sourceUrl: source.sourceUrl,
    epoch,
  };
  return { source, pipeline, epoch, keyInput, key: cacheKey(keyInput) };
}

export function factsOf(source: SourceCommit): { commit: string; branch?: string } {
  return { commit: source.commit, ...(source.branch ? { branch: source.branch } : {}) };
}

/** The parts of a BuildResult that do not depend on whether the stages ran. */
export function baseResult(source: SourceCommit, pipeline: Pipeline, repository: string, digest: string, key: string) {
  return {
    imageRef: formatImageRef(repository, digest),
    repository,
    digest,
    cacheKey: key,
    source: {
      repoDir: source.repoDir,
      url: source.sourceUrl,
      commit: source.commit,
      tree: source.tree,
      ...(source.branch ? { branch: source.branch } : {}),
      commitTime: source.commitTime,
    },
    pipeline: { name: pipeline.name, file: pipeline.file, digest: pipeline.digest },
    builder: { id: BUILDER_ID, version: BUILDER_VERSION },
  };
}

export interface FindCachedBuildOptions {
  repoDir: string;
  commit?: string;
  branch?: string;
  /** `oci:<dir>` or `host[:port]/name`, or an open store. */
  store: string | ImageStore;
  storeOptions?: RegistryOptions;
  env?: NodeJS.ProcessEnv;
  /** Default $SLIPWAY_HOME. */
  home?: string;
}

export type CachedBuildLookup =
  | { hit: true; result: BuildResult }
  /** Why the fast answer is not possible: the full build decides (it may still copy a cached image). */
  | { hit: false; reason: 'no-record' | 'not-in-store' | 'store-unknown'; key: string };

/**
 * A recorded build of this commit whose image the target store really holds (its manifest by digest:
 * read from the layout, or one HEAD request to the registry). Anything short of that is not a hit
 * here: the full build runs, which copies a cached image into the store or builds it.
 */
export async function findCachedBuild(opts: FindCachedBuildOptions): Promise<CachedBuildLookup> {
  const env = opts.env ?? process.env;
  const cacheRoot = buildCacheRoot(opts.home ?? slipwayHome(env));
  const inputs = await resolveBuildInputs({ repoDir: opts.repoDir, ...(opts.commit ? { commit: opts.commit } : {}), ...(opts.branch ? { branch: opts.branch } : {}), env, cacheRoot });
  const record = await readCacheRecord(cacheRoot, inputs.key);
  if (!record) return { hit: false, reason: 'no-record', key: inputs.key };
  const repository = typeof opts.store === 'string' ? opts.store : opts.store.repository;
  const presence = await manifestPresence(opts.store, record.digest, { ...opts.storeOptions, env });
  if (presence !== 'present') return { hit: false, reason: presence === 'absent' ? 'not-in-store' : 'store-unknown', key: inputs.key };
  return {
    hit: true,
    result: {
      ...baseResult(inputs.source, inputs.pipeline, repository, record.digest, inputs.key),
      cached: true,
      startedAt: record.startedAt,
      finishedAt: record.createdAt,
      stages: record.stages,
      image: { configDigest: record.configDigest, layerDigest: record.layerDigest },
    },
  };
}

async function manifestPresence(store: string | ImageStore, digest: string, opts: RegistryOptions): Promise<'present' | 'absent' | 'unknown'> {
  if (typeof store !== 'string') return (await store.getManifest(digest)) ? 'present' : 'absent';
  if (store.startsWith('oci:')) return (await new OciLayoutStore(store.slice(4)).getManifest(digest)) ? 'present' : 'absent';
  return probeManifest(store, digest, opts);
}

/**
 * The pipeline file at the commit. A file whose bytes passed validation before is read from the
 * memo under the cache (no schema compilation), which keeps a cache hit fast.
 */
async function loadPipeline(source: SourceCommit, text: string | undefined, cacheRoot: string): Promise<Pipeline> {
  if (text === undefined) {
    throw new SlipwayError(
      'PIPELINE_MISSING',
      `commit ${source.commit.slice(0, 12)} of ${source.repoDir} has no ${PIPELINE_FILE}; add one (apiVersion: slipway.dev/v1, kind: Pipeline, spec.stages, spec.image.context)`,
      'stalling',
      { commit: source.commit, file: PIPELINE_FILE },
    );
  }
  const memo = join(cacheRoot, 'pipelines', `${computeDigest(text).slice(7)}.json`);
  try {
    const saved = JSON.parse(await readFile(memo, 'utf8')) as { builderVersion: string; config: PipelineConfig };
    if (saved.builderVersion === BUILDER_VERSION) return await pipelineFromConfig(saved.config, text, PIPELINE_FILE);
  } catch {
    /* not validated before */
  }
  const pipeline = await parsePipeline(text, PIPELINE_FILE);
  // Best effort: concurrent builds may write the same memo; each write is whole (temp file + rename).
  const tmp = `${memo}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await mkdir(dirname(memo), { recursive: true });
    await writeFile(tmp, JSON.stringify({ builderVersion: BUILDER_VERSION, config: pipeline.config }));
    await rename(tmp, memo);
  } catch {
    await rm(tmp, { force: true }).catch(() => undefined);
  }
  return pipeline;
}
