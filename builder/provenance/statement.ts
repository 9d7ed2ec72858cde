/** A pure function from a build description to its SLSA v1 provenance statement. */
import { createHash } from 'node:crypto';
import { SlipwayError } from '../../lib/errors.js';
import {
  DEFAULT_BUILDER_ID,
  IN_TOTO_STATEMENT_V1,
  SLIPWAY_BUILD_TYPE,
  SLSA_PROVENANCE_V1,
  type ProvenanceStatement,
  type ResourceDescriptor,
} from '../../lib/provenance/index.js';

export interface ImageReference {
  /** The repository as users write it: `host:port/name` or `oci:<path>`. */
  name: string;
  /** `sha256:<64 hex>`. */
  digest: string;
}

export interface BuildDescription {
  /** The image this build produced (the statement's subject). */
  image: ImageReference;
  source: { repo: string; ref: string; commit: string };
  /** Path of the pipeline file inside the source repository, e.g. `.slipway/pipeline.yaml`. */
  pipelinePath: string;
  startedOn: Date | string;
  finishedOn: Date | string;
  builderVersion: string;
  /** Default: DEFAULT_BUILDER_ID. Must be listed in the verifying policy's `trust.builders`. */
  builderId?: string;
  /** Default: derived from source, image and start time, so the same build always gets the same id. */
  invocationId?: string;
  /** Base images the build started from, recorded by digest. */
  baseImages?: ImageReference[];
  /** Builder-controlled settings worth recording (e.g. the SOURCE_DATE_EPOCH used). */
  internalParameters?: Record<string, unknown>;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const GIT_COMMIT = /^([a-f0-9]{40}|[a-f0-9]{64})$/;

export function buildProvenance(build: BuildDescription): ProvenanceStatement {
  const startedOn = isoTime(build.startedOn, 'startedOn');
  const finishedOn = isoTime(build.finishedOn, 'finishedOn');
  requireDigest(build.image.digest, 'image.digest');
  requireText(build.image.name, 'image.name');
  requireText(build.source.repo, 'source.repo');
  requireText(build.source.ref, 'source.ref');
  requireText(build.pipelinePath, 'pipelinePath');
  requireText(build.builderVersion, 'builderVersion');
  if (!GIT_COMMIT.test(build.source.commit)) {
    invalid('source.commit', `must be a full git commit id (40 or 64 hex characters), got '${build.source.commit}'`);
  }
  if (Date.parse(finishedOn) < Date.parse(startedOn)) {
    invalid('finishedOn', `${finishedOn} is before startedOn ${startedOn}`);
  }
  const baseImages = build.baseImages ?? [];
  baseImages.forEach((base, i) => {
    requireText(base.name, `baseImages[${i}].name`);
    requireDigest(base.digest, `baseImages[${i}].digest`);
  });

  const { repo, ref, commit } = build.source;
  const resolvedDependencies: ResourceDescriptor[] = [
    { uri: `git+${repo}@${ref}`, digest: { gitCommit: commit } },
    ...baseImages.map((base) => ({
      name: base.name,
      uri: `${base.name}@${base.digest}`,
      digest: { sha256: hexOf(base.digest) },
    })),
  ];

  return {
    _type: IN_TOTO_STATEMENT_V1,
    subject: [{ name: build.image.name, digest: { sha256: hexOf(build.image.digest) } }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: SLIPWAY_BUILD_TYPE,
        externalParameters: { source: { repo, ref, commit }, pipeline: build.pipelinePath },
        internalParameters: build.internalParameters ?? {},
        resolvedDependencies,
      },
      runDetails: {
        builder: { id: build.builderId ?? DEFAULT_BUILDER_ID, version: { slipway: build.builderVersion } },
        metadata: {
          invocationId: build.invocationId ?? invocationIdOf(build, startedOn),
          startedOn,
          finishedOn,
        },
      },
    },
  };
}

/** The exact bytes that get signed: the statement as JSON, keys in the order built above. */
export function statementBytes(statement: ProvenanceStatement): Buffer {
  return Buffer.from(JSON.stringify(statement), 'utf8');
}

function invocationIdOf(build: BuildDescription, startedOn: string): string {
  const h = createHash('sha256')
    .update([build.source.repo, build.source.commit, build.image.digest, startedOn].join('\n'))
    .digest('hex');
  return `urn:slipway:build:${h.slice(0, 32)}`;
}

function hexOf(digest: string): string {
  return digest.slice('sha256:'.length);
}

function isoTime(value: Date | string, field: string): string {
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  if (Number.isNaN(ms)) invalid(field, `'${String(value)}' is not a date-time`);
  return new Date(ms).toISOString();
}

function requireDigest(value: string, field: string): void {
  if (!DIGEST.test(value)) invalid(field, `must be sha256:<64 lowercase hex>, got '${value}'`);
}

function requireText(value: string, field: string): void {
  if (typeof value !== 'string' || value.length === 0) invalid(field, 'is required');
}

function invalid(field: string, problem: string): never {
  throw new SlipwayError('INVALID_BUILD_DESCRIPTION', `provenance: ${field} ${problem}`, 'stalling', { field });
}
