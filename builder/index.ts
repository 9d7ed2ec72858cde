/**
 * The builder: a service commit → pipeline → reproducible OCI image → pushed by digest, with a build
 * cache. `build()` is the whole flow; the pieces are exported for the CLI and for signing.
 */
export { build, copyImage, type BuildOptions, type BuildResult, type BuildEvent } from './build.js';
export { BUILDER_ID, BUILDER_VERSION, IMAGE_FORMAT } from './version.js';
export { BuildCache, cacheKey, type CacheKeyInput, type CacheRecord } from './cache/index.js';
export { buildImage, imageEpoch, LABEL_SOURCE, LABEL_REVISION, LABEL_CREATED, type BuiltImage, type BuildImageOptions } from './image/index.js';
export {
  parsePipeline,
  runPipeline,
  createProgressReporter,
  stageLine,
  formatMs,
  PIPELINE_FILE,
  type Pipeline,
  type PipelineRun,
  type PipelineEvent,
  type StageResult,
  type StageStatus,
} from './pipeline/index.js';
export { resolveSource, checkoutCommit, readFileAtCommit, type SourceCommit } from './source/index.js';
