/** The provenance of what `build()` produced: its result mapped onto a BuildDescription. */
import type { BuildDescription } from './statement.js';

/** The fields of the builder's BuildResult that provenance records (structural, so either side can evolve). */
export interface BuildFacts {
  repository: string;
  digest: string;
  cached?: boolean;
  cacheKey?: string;
  source: { url: string; commit: string; branch?: string };
  pipeline: { file: string; digest?: string };
  builder: { id: string; version: string };
  startedAt: string;
  finishedAt: string;
  baseImages?: { name: string; digest: string }[];
}

/**
 * A build of a branch records `refs/heads/<branch>`; a build of a detached commit records the commit itself as
 * the ref, which no branch rule allows, so such an image is refused unless the policy allows it explicitly.
 */
export function describeBuild(facts: BuildFacts): BuildDescription {
  const internalParameters: Record<string, unknown> = {};
  if (facts.pipeline.digest) internalParameters.pipelineDigest = facts.pipeline.digest;
  if (facts.cacheKey) internalParameters.cacheKey = facts.cacheKey;
  if (facts.cached !== undefined) internalParameters.fromCache = facts.cached;
  return {
    image: { name: facts.repository, digest: facts.digest },
    source: { repo: facts.source.url, ref: facts.source.branch ? `refs/heads/${facts.source.branch}` : facts.source.commit, commit: facts.source.commit },
    pipelinePath: facts.pipeline.file,
    startedOn: facts.startedAt,
    finishedOn: facts.finishedAt,
    builderId: facts.builder.id,
    builderVersion: facts.builder.version,
    ...(facts.baseImages?.length ? { baseImages: facts.baseImages } : {}),
    internalParameters,
  };
}
