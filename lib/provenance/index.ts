/** Provenance verification: the statement contract, the policy checks, and `verifyImage` (used before every deploy). */
export type { RefusalCode, VerificationResult, VerifiedProvenance, VerifyRequest } from './types.js';
export {
  DEFAULT_BUILDER_ID,
  IN_TOTO_PAYLOAD_TYPE,
  IN_TOTO_STATEMENT_V1,
  SLIPWAY_BUILD_TYPE,
  SLSA_PROVENANCE_V1,
  branchOf,
} from './statement.js';
export type {
  ProvenanceStatement,
  ResourceDescriptor,
  SlipwayExternalParameters,
  SlsaProvenanceV1,
  SourceParameters,
  Subject,
} from './statement.js';
export { verifyAttestations, verifyImage } from './verify.js';
export type { VerifyImageRequest } from './verify.js';
export { VerificationCache, cacheKeyOf } from './cache.js';
export type { VerificationCacheOptions } from './cache.js';
export { globMatch, keySetHashOf, policyHashOf, preparePolicy, sourceAllowed } from './policy.js';
export type { PreparedPolicy, TrustedKeyEntry } from './policy.js';
export { loadTrustPolicyFile } from './policy-file.js';
export type { LoadedTrustPolicy } from './policy-file.js';
export { createProvenanceVerifier } from './verifier.js';
export type { ImageProvenanceVerifier, ProvenanceVerifierOptions } from './verifier.js';
