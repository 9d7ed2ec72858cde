/** Attestations next to images: attach (cosign `.att` + sigstore bundle referrer) and fetch. */
export { attachAttestation, attachBundleReferrer } from './attach.js';
export type { AttachBundleRequest, AttachRequest, AttachResult } from './attach.js';
export { fetchAttestations } from './fetch.js';
export type { AttestationProblem, FetchedAttestation, FetchedAttestations } from './fetch.js';
export { ANNOTATIONS, ATTESTATION_MEDIA_TYPES, attestationTag, referrersTag } from './layout.js';
