/**
 * The provenance contract both sides share: the builder writes these statements, the verifier reads them.
 * in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md) carrying a
 * SLSA Provenance v1 predicate (https://slsa.dev/spec/v1.0/provenance).
 */

export const IN_TOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/** What a Slipway build is: a pipeline file run against a git commit. Versioned like SLSA build types. */
export const SLIPWAY_BUILD_TYPE = 'https://slipway.dev/buildtypes/pipeline/v1';
/** The builder id a local `slipway build` reports unless told otherwise. Listed in the example policy. */
export const DEFAULT_BUILDER_ID = 'https://slipway.dev/builder/v1';

/** in-toto ResourceDescriptor. */
export interface ResourceDescriptor {
  uri?: string;
  name?: string;
  digest?: Record<string, string>;
  annotations?: Record<string, unknown>;
}

export interface Subject {
  name: string;
  digest: { sha256: string } & Record<string, string>;
}

export interface SourceParameters {
  repo: string;
  ref: string;
  commit: string;
}

export interface SlipwayExternalParameters {
  source: SourceParameters;
  /** Path of the pipeline file inside the source repository. */
  pipeline: string;
  [key: string]: unknown;
}

export interface SlsaProvenanceV1 {
  buildDefinition: {
    buildType: string;
    externalParameters: SlipwayExternalParameters;
    internalParameters?: Record<string, unknown>;
    resolvedDependencies?: ResourceDescriptor[];
  };
  runDetails: {
    builder: {
      id: string;
      /** SLSA v1: a map of component name to version. */
      version?: Record<string, string>;
      builderDependencies?: ResourceDescriptor[];
    };
    metadata?: {
      invocationId?: string;
      startedOn?: string;
      finishedOn?: string;
    };
    byproducts?: ResourceDescriptor[];
  };
}

export interface ProvenanceStatement {
  _type: typeof IN_TOTO_STATEMENT_V1;
  subject: Subject[];
  predicateType: typeof SLSA_PROVENANCE_V1;
  predicate: SlsaProvenanceV1;
}

/** `refs/heads/main` → `main`; other refs unchanged. */
export function branchOf(ref: string): string {
  return ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : ref;
}
