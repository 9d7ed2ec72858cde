/** Reading every attestation attached to an image: referrer bundles first, then cosign `.att` layers. */
import { BUNDLE_V03_MEDIA_TYPE } from '@sigstore/bundle';
import { errorMessage, isSlipwayError } from '../errors.js';
import { OciLayoutStore, type Descriptor, type FetchedManifest, type ImageManifest, type ImageStore } from '../oci/index.js';
import { ATTESTATION_MEDIA_TYPES as MT, attestationTag, referrersTag } from './layout.js';

export interface FetchedAttestation {
  /** Where it was found, for messages: `referrer sha256:…` or `sha256-….att layer 1`. */
  origin: string;
  via: 'referrer' | 'attestation-manifest';
  /**
   * A sigstore bundle as parsed JSON, unchecked. A `.att` layer holds only a DSSE envelope; it is wrapped in a
   * bundle whose key hint is the envelope's `keyid` (empty when cosign wrote it: then every trusted key is tried).
   */
  bundle: unknown;
}

/** Something attached that cannot be read as an attestation (wrong media type, unparseable, dangling). */
export interface AttestationProblem {
  origin: string;
  message: string;
}

export interface FetchedAttestations {
  digest: string;
  attestations: FetchedAttestation[];
  problems: AttestationProblem[];
  /** How the referrers were listed. */
  referrersVia: 'api' | 'tag' | 'none';
}

/**
 * Everything attached to `digest`, read concurrently (the referrers listing and the `.att` manifest, then every
 * bundle and layer): a verification against a remote registry costs two round trips, not six.
 */
export async function fetchAttestations(store: ImageStore, digest: string): Promise<FetchedAttestations> {
  const result: FetchedAttestations = { digest, attestations: [], problems: [], referrersVia: 'none' };
  const tag = attestationTag(digest);
  const [descriptors, att] = await Promise.all([listBundleReferrers(store, digest, result), store.getManifest(tag)]);

  const referrerReads = capped(descriptors, `referrers of ${digest}`, result).map((descriptor) => {
    const origin = `referrer ${descriptor.digest}`;
    return readOrReport(result, origin, () => readReferrerBundle(store, digest, descriptor)).then((bundle) => ({ origin, bundle }));
  });

  let layerReads: Promise<{ origin: string; envelope: unknown }>[] = [];
  if (att) {
    const manifest = parseJson(att.bytes) as Partial<ImageManifest> | undefined;
    const mediaType = (manifest?.mediaType as string | undefined) ?? att.mediaType;
    if (!manifest || !Array.isArray(manifest.layers)) {
      result.problems.push({ origin: tag, message: `${tag} is not an image manifest (media type ${mediaType})` });
    } else if (mediaType !== MT.imageManifest && mediaType !== MT.dockerManifest) {
      result.problems.push({ origin: tag, message: `${tag} has media type ${mediaType}, expected ${MT.imageManifest}` });
    } else {
      layerReads = capped(manifest.layers, tag, result).map((layer, i) => {
        const origin = `${tag} layer ${i}`;
        if (layer?.mediaType !== MT.dsseEnvelope) {
          result.problems.push({ origin, message: `${origin} has media type ${String(layer?.mediaType)}, expected ${MT.dsseEnvelope}` });
          return Promise.resolve({ origin, envelope: undefined });
        }
        return readOrReport(result, origin, async () => parseOrThrow(await getSmallBlob(store, layer, 'DSSE envelope'), 'DSSE envelope')).then((envelope) => ({ origin, envelope }));
      });
    }
  }

  const [bundles, envelopes] = await Promise.all([Promise.all(referrerReads), Promise.all(layerReads)]);
  // The same envelope is usually both a referrer bundle and a .att layer: keep it once, as the bundle.
  const seen = new Set<string>();
  for (const { origin, bundle } of bundles) {
    if (bundle === undefined) continue;
    const key = envelopeKey((bundle as { dsseEnvelope?: unknown }).dsseEnvelope);
    if (key) seen.add(key);
    result.attestations.push({ origin, via: 'referrer', bundle });
  }
  for (const { origin, envelope } of envelopes) {
    if (envelope === undefined) continue;
    const key = envelopeKey(envelope);
    if (key && seen.has(key)) continue;
    if (key) seen.add(key);
    result.attestations.push({ origin, via: 'attestation-manifest', bundle: envelopeAsBundle(envelope) });
  }
  return result;
}

/**
 * A registry: its referrers API, else the `sha256-<hex>` tag index. An OCI layout: the tag index first (Slipway
 * writes it there), and only without one the layout's scan of every manifest (for bundles other tools attached).
 */
async function listBundleReferrers(store: ImageStore, digest: string, result: FetchedAttestations): Promise<Descriptor[]> {
  const tag = referrersTag(digest);
  let fetched: FetchedManifest | undefined;
  if (store instanceof OciLayoutStore) {
    fetched = await store.getManifest(tag);
  }
  if (!fetched) {
    const viaApi = await store.referrers(digest, MT.sigstoreBundle);
    if (viaApi !== undefined) {
      result.referrersVia = 'api';
      return viaApi.filter((d) => d.artifactType === undefined || d.artifactType === MT.sigstoreBundle);
    }
    fetched = await store.getManifest(tag);
  }
  if (!fetched) return [];
  result.referrersVia = 'tag';
  const index = parseJson(fetched.bytes) as { mediaType?: string; manifests?: Descriptor[] } | undefined;
  if (!index || !Array.isArray(index.manifests) || (index.mediaType ?? fetched.mediaType) !== MT.imageIndex) {
    result.problems.push({ origin: tag, message: `${tag} is not a referrers index (media type ${fetched.mediaType})` });
    return [];
  }
  // Entries without artifactType are checked when their manifest is read.
  return index.manifests.filter((d) => d && (d.artifactType === undefined || d.artifactType === MT.sigstoreBundle));
}

async function readReferrerBundle(store: ImageStore, subjectDigest: string, descriptor: Descriptor): Promise<unknown> {
  const fetched = await store.getManifest(descriptor.digest);
  if (!fetched) throw new AttachmentProblem(`manifest ${descriptor.digest} is listed but missing`);
  const manifest = parseOrThrow(fetched.bytes, 'referrer manifest') as Partial<ImageManifest>;
  if (manifest.artifactType !== MT.sigstoreBundle) {
    throw new AttachmentProblem(`artifactType is ${String(manifest.artifactType)}, expected ${MT.sigstoreBundle}`);
  }
  if (manifest.subject?.digest !== subjectDigest) {
    throw new AttachmentProblem(`subject is ${String(manifest.subject?.digest)}, not ${subjectDigest}`);
  }
  const layer = manifest.layers?.[0];
  if (!layer || (layer.mediaType !== MT.sigstoreBundle && layer.mediaType !== BUNDLE_V03_MEDIA_TYPE)) {
    throw new AttachmentProblem(`first layer has media type ${String(layer?.mediaType)}, expected ${MT.sigstoreBundle}`);
  }
  return parseOrThrow(await getSmallBlob(store, layer, 'sigstore bundle'), 'sigstore bundle');
}

/** Reads one item; a bad item becomes a problem, but a store that is down still fails the whole fetch. */
async function readOrReport(result: FetchedAttestations, origin: string, read: () => Promise<unknown>): Promise<unknown> {
  try {
    return await read();
  } catch (err) {
    if (isSlipwayError(err) && err.kind === 'waiting') throw err;
    result.problems.push({ origin, message: `${origin}: ${errorMessage(err)}` });
    return undefined;
  }
}

class AttachmentProblem extends Error {}

/** Attestations are a few KiB; anything far larger is not read (a registry could otherwise make us fetch gigabytes). */
export const MAX_ATTESTATION_BYTES = 4 * 1024 * 1024;
/** At most this many attachments of each kind are read; attaching appends, so the first ones are the oldest. */
export const MAX_ATTESTATIONS = 64;

async function getSmallBlob(store: ImageStore, descriptor: Descriptor, what: string): Promise<Buffer> {
  if (typeof descriptor.size === 'number' && descriptor.size > MAX_ATTESTATION_BYTES) {
    throw new AttachmentProblem(`${what} is ${descriptor.size} bytes, more than the ${MAX_ATTESTATION_BYTES} read`);
  }
  const bytes = await store.getBlob(descriptor.digest);
  if (bytes.length > MAX_ATTESTATION_BYTES) throw new AttachmentProblem(`${what} is ${bytes.length} bytes, more than the ${MAX_ATTESTATION_BYTES} read`);
  return bytes;
}

function capped<T>(items: T[], where: string, result: FetchedAttestations): T[] {
  if (items.length <= MAX_ATTESTATIONS) return items;
  result.problems.push({ origin: where, message: `${where} lists ${items.length} attachments; only the first ${MAX_ATTESTATIONS} are read` });
  return items.slice(0, MAX_ATTESTATIONS);
}

function envelopeAsBundle(envelope: unknown): unknown {
  const signatures = (envelope as { signatures?: { keyid?: unknown }[] } | null)?.signatures;
  const hint = Array.isArray(signatures) && typeof signatures[0]?.keyid === 'string' ? signatures[0].keyid : '';
  return {
    mediaType: BUNDLE_V03_MEDIA_TYPE,
    verificationMaterial: {
      publicKey: { hint },
      tlogEntries: [],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    dsseEnvelope: envelope,
  };
}

function envelopeKey(envelope: unknown): string | undefined {
  const e = envelope as { payload?: unknown; signatures?: { sig?: unknown }[] } | null;
  const sig = Array.isArray(e?.signatures) ? e?.signatures[0]?.sig : undefined;
  return typeof e?.payload === 'string' && typeof sig === 'string' ? `${e.payload}\n${sig}` : undefined;
}

function parseOrThrow(bytes: Buffer, what: string): unknown {
  const parsed = parseJson(bytes);
  if (parsed === undefined || parsed === null || typeof parsed !== 'object') throw new AttachmentProblem(`${what} is not JSON`);
  return parsed;
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}
