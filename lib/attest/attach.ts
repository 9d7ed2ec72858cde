/** Attaching a signed attestation next to its image, in both of cosign's layouts. */
import type { SerializedBundle } from '@sigstore/bundle';
import { SlipwayError } from '../errors.js';
import { OciLayoutStore, type Descriptor, type ImageManifest, type ImageStore } from '../oci/index.js';
import {
  ANNOTATIONS,
  ATTESTATION_MEDIA_TYPES as MT,
  EMPTY_JSON,
  EMPTY_JSON_DIGEST,
  attestationTag,
  hexOfDigest,
  referrersTag,
  sha256Digest,
} from './layout.js';
import { updateTag } from './tag-update.js';

export interface AttachRequest {
  store: ImageStore;
  /** The image the attestation is about (must already be in the store). */
  digest: string;
  /** The sigstore bundle holding the DSSE envelope. */
  bundle: SerializedBundle;
  predicateType: string;
  /** Recorded as `org.opencontainers.image.created`; pass the build's finish time to keep pushes reproducible. */
  created: Date;
}

export interface AttachResult {
  /** `sha256-<hex>.att` */
  attestationTag: string;
  attestationManifest: string;
  /** How many attestations the `.att` manifest now holds. */
  attestationLayers: number;
  referrerManifest: string;
  /** Set when the store has no referrers API and the `sha256-<hex>` index was written instead. */
  referrersTag?: string;
}

export async function attachAttestation(req: AttachRequest): Promise<AttachResult> {
  const { store, digest } = req;
  hexOfDigest(digest);
  const image = await store.getManifest(digest);
  if (!image) {
    throw new SlipwayError('IMAGE_NOT_FOUND', `cannot attach an attestation: ${store.repository}@${digest} is not in the store`, 'stalling', { digest });
  }
  const envelope = req.bundle.dsseEnvelope;
  if (!envelope) {
    throw new SlipwayError('ATTESTATION_INVALID', 'only bundles holding a DSSE envelope can be attached as attestations', 'stalling');
  }
  const subject: Descriptor = { mediaType: image.mediaType, digest: image.digest, size: image.bytes.length };
  const att = await appendToAttestationManifest(store, digest, Buffer.from(JSON.stringify(envelope)), req.predicateType);
  const referrer = await pushBundleReferrer(store, subject, Buffer.from(JSON.stringify(req.bundle)), req.predicateType, req.created);
  return { attestationTag: attestationTag(digest), ...att, ...referrer };
}

export interface AttachBundleRequest {
  store: ImageStore;
  digest: string;
  /** A serialized sigstore bundle, stored exactly as given (e.g. one another tool wrote). */
  bundleBytes: Uint8Array;
  predicateType: string;
  created: Date;
}

/** Only the referrer half: the bundle bytes as they are, as an OCI 1.1 referrer of the image. */
export async function attachBundleReferrer(req: AttachBundleRequest): Promise<{ referrerManifest: string; referrersTag?: string }> {
  hexOfDigest(req.digest);
  const image = await req.store.getManifest(req.digest);
  if (!image) {
    throw new SlipwayError('IMAGE_NOT_FOUND', `cannot attach a bundle: ${req.store.repository}@${req.digest} is not in the store`, 'stalling', { digest: req.digest });
  }
  const subject: Descriptor = { mediaType: image.mediaType, digest: image.digest, size: image.bytes.length };
  return pushBundleReferrer(req.store, subject, Buffer.from(req.bundleBytes), req.predicateType, req.created);
}

/** cosign's `.att` manifest: keeps the layers already there and appends this envelope (once). */
async function appendToAttestationManifest(store: ImageStore, digest: string, envelope: Buffer, predicateType: string) {
  const tag = attestationTag(digest);
  const layerDigest = sha256Digest(envelope);
  await store.putBlob(layerDigest, envelope);
  let layerCount = 0;
  const attestationManifest = await updateTag({
    store,
    tag,
    present: (fetched) => {
      const layers = (parseJson(fetched.bytes) as Partial<ImageManifest> | undefined)?.layers;
      const found = Array.isArray(layers) && layers.some((l) => l?.digest === layerDigest);
      if (found) layerCount = layers.length;
      return found;
    },
    merge: async (existing) => {
      const layers: Descriptor[] = [];
      if (existing) {
        const manifest = parseJson(existing.bytes) as Partial<ImageManifest> | undefined;
        const mediaType = manifest?.mediaType ?? existing.mediaType;
        if (!manifest || !Array.isArray(manifest.layers) || (mediaType !== MT.imageManifest && mediaType !== MT.dockerManifest)) {
          throw new SlipwayError(
            'ATTESTATION_TAG_CONFLICT',
            `${store.repository}:${tag} holds a ${mediaType} that is not an attestation manifest; delete that tag and attach again`,
            'stalling',
            { tag },
          );
        }
        layers.push(...manifest.layers);
      }
      layers.push({
        mediaType: MT.dsseEnvelope,
        digest: layerDigest,
        size: envelope.length,
        annotations: { [ANNOTATIONS.cosignSignature]: '', [ANNOTATIONS.predicateType]: predicateType },
      });
      // cosign's config: an image config whose rootfs lists the layers, all times at the zero time.
      const config = Buffer.from(
        JSON.stringify({
          architecture: '',
          created: '0001-01-01T00:00:00Z',
          history: layers.map(() => ({ created: '0001-01-01T00:00:00Z' })),
          os: '',
          rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
          config: {},
        }),
      );
      const configDigest = sha256Digest(config);
      await store.putBlob(configDigest, config);
      const manifest: ImageManifest = {
        schemaVersion: 2,
        mediaType: MT.imageManifest,
        config: { mediaType: MT.imageConfig, digest: configDigest, size: config.length },
        layers,
      };
      return { bytes: Buffer.from(JSON.stringify(manifest)), mediaType: MT.imageManifest };
    },
  });
  return { attestationManifest, attestationLayers: layerCount };
}

/** The bundle as an OCI 1.1 referrer of the image, plus the tag-schema index when the store has no referrers API. */
async function pushBundleReferrer(store: ImageStore, subject: Descriptor, bundleBytes: Buffer, predicateType: string, created: Date) {
  const bundleDigest = sha256Digest(bundleBytes);
  await store.putBlob(bundleDigest, bundleBytes);
  if (!(await store.hasBlob(EMPTY_JSON_DIGEST))) await store.putBlob(EMPTY_JSON_DIGEST, EMPTY_JSON);

  const annotations = {
    [ANNOTATIONS.bundleContent]: 'dsse-envelope',
    [ANNOTATIONS.bundlePredicateType]: predicateType,
    [ANNOTATIONS.created]: created.toISOString(),
  };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MT.imageManifest,
    artifactType: MT.sigstoreBundle,
    config: { mediaType: MT.emptyJson, digest: EMPTY_JSON_DIGEST, size: EMPTY_JSON.length },
    layers: [
      {
        mediaType: MT.sigstoreBundle,
        digest: bundleDigest,
        size: bundleBytes.length,
        annotations: { [ANNOTATIONS.title]: `sha256-${hexOfDigest(bundleDigest)}.sigstore.json` },
      },
    ],
    subject,
    annotations,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const referrerManifest = await store.putManifest(manifestBytes, MT.imageManifest);

  // An OCI layout answers referrers only by reading every manifest in it (slow once it holds many images), so
  // the tag-schema index is written there too and read first; a registry gets it only when it has no API.
  const writeTag = store instanceof OciLayoutStore || (await store.referrers(subject.digest)) === undefined;
  if (!writeTag) return { referrerManifest };

  const tag = referrersTag(subject.digest);
  await updateTag({
    store,
    tag,
    present: (fetched) => {
      const manifests = (parseJson(fetched.bytes) as { manifests?: Descriptor[] } | undefined)?.manifests;
      return Array.isArray(manifests) && manifests.some((d) => d?.digest === referrerManifest);
    },
    merge: async (existing) => {
      const entries: Descriptor[] = [];
      if (existing) {
        const index = parseJson(existing.bytes) as { mediaType?: string; manifests?: Descriptor[] } | undefined;
        if (!index || !Array.isArray(index.manifests) || (index.mediaType ?? existing.mediaType) !== MT.imageIndex) {
          throw new SlipwayError(
            'ATTESTATION_TAG_CONFLICT',
            `${store.repository}:${tag} is not a referrers index (OCI tag schema); delete that tag and attach again`,
            'stalling',
            { tag },
          );
        }
        entries.push(...index.manifests);
      }
      entries.push({ mediaType: MT.imageManifest, digest: referrerManifest, size: manifestBytes.length, artifactType: MT.sigstoreBundle, annotations });
      return { bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.imageIndex, manifests: entries })), mediaType: MT.imageIndex };
    },
  });
  return { referrerManifest, referrersTag: tag };
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}
