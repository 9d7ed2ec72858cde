/** Signing: provenance statements into sigstore DSSE bundles, with a key (offline) or keyless (Fulcio + Rekor). */
export { signStatement } from './sign.js';
export type { SignedAttestation, SigningOptions } from './sign.js';
export { KeySigner, SUPPORTED_CURVE, createKeySigner } from './key-signer.js';
export type { SigningKeyMaterial } from './key-signer.js';
export { attestAfterPush, signAndAttach } from './attach.js';
export type { SignAndAttachRequest, SignAndAttachResult } from './attach.js';
export { resolveSigning } from './resolve.js';
export type { SigningChoice } from './resolve.js';
export { decideSigning, type SigningDecision, type SigningFlags } from './policy.js';
export { findReusableAttestation, type ReusableAttestation } from './reuse/index.js';
