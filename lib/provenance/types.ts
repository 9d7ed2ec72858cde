import type { TrustPolicy } from '../../schemas/index.js';

/** Why a digest is refused. Stable codes: CLI, API, logs and metrics all show them. */
export type RefusalCode =
  | 'NO_ATTESTATION'
  | 'BAD_SIGNATURE'
  | 'UNTRUSTED_KEY'
  | 'SUBJECT_MISMATCH'
  | 'UNTRUSTED_BUILDER'
  | 'SOURCE_NOT_ALLOWED'
  | 'KEY_EXPIRED'
  | 'MALFORMED';

export interface VerifiedProvenance {
  digest: string;
  builderId: string;
  builderVersion?: string;
  sourceRepo: string;
  sourceRef: string;
  sourceCommit: string;
  keyName: string;
  startedOn?: string;
  finishedOn?: string;
}

export type VerificationResult =
  | { ok: true; provenance: VerifiedProvenance }
  | { ok: false; code: RefusalCode; message: string };

export interface VerifyRequest {
  /** `repository@sha256:...` pieces. */
  repository: string;
  digest: string;
  service: string;
  policy: TrustPolicy;
  /** PEM public keys by trusted key name (read from the environments repo). */
  publicKeys: Record<string, string>;
  now?: Date;
}
