/**
 * Where attestations live next to an image, the way cosign stores them:
 * - `sha256-<hex>.att`: an OCI image manifest, one DSSE envelope layer per attestation (cosign's attestation spec);
 * - a referrer manifest per sigstore bundle (artifactType = bundle media type, subject = the image), listed by the
 *   registry's referrers API or, where there is none, by the `sha256-<hex>` tag holding an image index
 *   (OCI distribution spec, referrers tag schema; cosign's bundle spec).
 */
import { createHash } from 'node:crypto';
import { MEDIA_TYPES } from '../oci/types.js';

export const ATTESTATION_MEDIA_TYPES = {
  dsseEnvelope: MEDIA_TYPES.dsseEnvelope,
  sigstoreBundle: MEDIA_TYPES.sigstoreBundle,
  imageManifest: MEDIA_TYPES.imageManifest,
  imageIndex: MEDIA_TYPES.imageIndex,
  imageConfig: MEDIA_TYPES.imageConfig,
  emptyJson: MEDIA_TYPES.emptyJson,
  /** Docker schema 2 manifests, which older cosign versions wrote for `.att`. Read, never written. */
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

export const ANNOTATIONS = {
  /** cosign marks every signature/attestation layer with this (empty unless a simple-signing signature). */
  cosignSignature: 'dev.cosignproject.cosign/signature',
  predicateType: 'predicateType',
  bundleContent: 'dev.sigstore.bundle.content',
  bundlePredicateType: 'dev.sigstore.bundle.predicateType',
  created: 'org.opencontainers.image.created',
  title: 'org.opencontainers.image.title',
} as const;

/** The OCI empty descriptor's content: `{}`. */
export const EMPTY_JSON = Buffer.from('{}');
export const EMPTY_JSON_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

const DIGEST = /^sha256:([a-f0-9]{64})$/;

export function hexOfDigest(digest: string): string {
  const m = DIGEST.exec(digest);
  if (!m) throw new TypeError(`not a sha256 digest: '${digest}'`);
  return m[1] as string;
}

/** cosign's attestation tag for an image digest. */
export function attestationTag(digest: string): string {
  return `sha256-${hexOfDigest(digest)}.att`;
}

/** The referrers tag schema's fallback tag for a subject digest. */
export function referrersTag(digest: string): string {
  return `sha256-${hexOfDigest(digest)}`;
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
