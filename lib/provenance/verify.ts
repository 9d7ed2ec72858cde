/**
 * Verification: the signature with @sigstore/verify against the policy's keys (offline, key mode: no transparency
 * log, no timestamps), then everything the verifier does not know about: payload type, statement and predicate
 * types, the subject digest, the builder, the source, the key's validity period.
 */
import { BUNDLE_V03_LEGACY_MEDIA_TYPE, BUNDLE_V03_MEDIA_TYPE, bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { Verifier, VerificationError, toSignedEntity, toTrustMaterial, type KeyFinderFunc } from '@sigstore/verify';
import { errorMessage } from '../errors.js';
import type { FetchedAttestation, FetchedAttestations } from '../attest/index.js';
import { fetchAttestations } from '../attest/index.js';
import { assertDigest, type ImageStore } from '../oci/index.js';
import {
  builderTrusted,
  describeSources,
  keyWindowProblem,
  preparePolicy,
  sourceAllowed,
  sourcesFor,
  type PreparedPolicy,
  type TrustedKeyEntry,
} from './policy.js';
import { IN_TOTO_PAYLOAD_TYPE, IN_TOTO_STATEMENT_V1, SLSA_PROVENANCE_V1, branchOf } from './statement.js';
import type { RefusalCode, VerificationResult, VerifiedProvenance, VerifyRequest } from './types.js';
import type { VerificationCache } from './cache.js';
import { cacheKeyOf } from './cache.js';

type Refusal = Extract<VerificationResult, { ok: false }>;

/** When several attestations are refused, the one that got furthest explains best. */
const DEPTH: Record<RefusalCode, number> = {
  NO_ATTESTATION: 0,
  MALFORMED: 1,
  UNTRUSTED_KEY: 2,
  KEY_EXPIRED: 3,
  BAD_SIGNATURE: 4,
  SUBJECT_MISMATCH: 5,
  UNTRUSTED_BUILDER: 6,
  SOURCE_NOT_ALLOWED: 7,
};

const EMPTY_TRUSTED_ROOT = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
} as Parameters<typeof toTrustMaterial>[0];

/** Key mode: nothing but the signature itself is required. */
const KEY_MODE_THRESHOLDS = { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 };

export interface VerifyImageRequest extends VerifyRequest {
  store: ImageStore;
  cache?: VerificationCache;
}

/** Fetches the attestations of `digest` and decides. Only the store can throw (and only when it is unreachable). */
export async function verifyImage(req: VerifyImageRequest): Promise<VerificationResult> {
  assertDigest(req.digest, 'image digest');
  const now = req.now ?? new Date();
  const prepared = preparePolicy(req.policy, req.publicKeys);
  const cacheKey = req.cache ? cacheKeyOf(req.digest, req.service, prepared) : undefined;
  if (req.cache && cacheKey) {
    const hit = req.cache.get(cacheKey, now);
    if (hit) return hit;
  }
  const fetched = await fetchAttestations(req.store, req.digest);
  const result = decide(fetched, req, prepared, now);
  if (result.ok && req.cache && cacheKey) {
    const entry = prepared.keys.get(result.provenance.keyName);
    req.cache.set(cacheKey, result, { validFrom: entry?.validFrom, validUntil: entry?.validUntil });
  }
  return result;
}

/** The pure half: attestations already fetched, no IO. */
export function verifyAttestations(fetched: FetchedAttestations, req: VerifyRequest): VerificationResult {
  return decide(fetched, req, preparePolicy(req.policy, req.publicKeys), req.now ?? new Date());
}

function decide(fetched: FetchedAttestations, req: VerifyRequest, prepared: PreparedPolicy, now: Date): VerificationResult {
  if (fetched.attestations.length === 0) {
    if (fetched.problems.length > 0) {
      return refuse('MALFORMED', `no readable attestation for ${req.digest}: ${fetched.problems.map((p) => p.message).join('; ')}`);
    }
    return refuse(
      'NO_ATTESTATION',
      `no attestation is attached to ${req.repository}@${req.digest} (looked for referrers and the cosign .att tag); sign it with \`slipway build\` or refuse to deploy it`,
    );
  }
  const refusals: Refusal[] = [];
  for (const attestation of fetched.attestations) {
    const result = verifyOne(attestation, req, prepared, now);
    if (result.ok) return result;
    refusals.push(result);
  }
  const best = refusals.reduce((a, b) => (DEPTH[b.code] > DEPTH[a.code] ? b : a));
  const others = refusals.length - 1;
  return others > 0 ? { ...best, message: `${best.message} (${others} other attestation${others > 1 ? 's' : ''} also refused)` } : best;
}

function verifyOne(attestation: FetchedAttestation, req: VerifyRequest, prepared: PreparedPolicy, now: Date): VerificationResult {
  const at = attestation.origin;
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(attestation.bundle);
  } catch (err) {
    return refuse('MALFORMED', `${at} is not a valid sigstore bundle: ${errorMessage(err)}`);
  }
  if (bundle.mediaType !== BUNDLE_V03_MEDIA_TYPE && bundle.mediaType !== BUNDLE_V03_LEGACY_MEDIA_TYPE) {
    return refuse('MALFORMED', `${at} has bundle media type ${bundle.mediaType}, expected ${BUNDLE_V03_MEDIA_TYPE}`);
  }
  if (bundle.content.$case !== 'dsseEnvelope') {
    return refuse('MALFORMED', `${at} holds a ${bundle.content.$case}, expected a DSSE envelope`);
  }
  const material = bundle.verificationMaterial.content;
  if (material.$case !== 'publicKey') {
    return refuse(
      'UNTRUSTED_KEY',
      `${at} is signed keylessly (a Fulcio certificate); this policy trusts keys only: ${[...prepared.keys.keys()].join(', ')}`,
    );
  }

  // The hint names the key (Slipway writes the key name; other signers its sha256 fingerprint). An empty or
  // unknown hint (cosign writes none; a re-hinted bundle) means: try every trusted key, as cosign does.
  const hint = material.publicKey.hint;
  const named = hint ? (prepared.keys.get(hint) ?? prepared.byFingerprint.get(hint.replace(/^sha256:/, '').toLowerCase())) : undefined;
  const candidates = named ? [named] : [...prepared.keys.values()];

  let signer: TrustedKeyEntry | undefined;
  let lastRefusal: Refusal | undefined;
  const entity = toSignedEntity(bundle);
  for (const entry of candidates) {
    if (!entry.key) {
      lastRefusal = refuse('UNTRUSTED_KEY', `${at}: ${entry.problem}`);
      continue;
    }
    try {
      verifierFor(entry).verify(entity);
    } catch (err) {
      lastRefusal = signatureRefusal(at, entry.name, err);
      continue;
    }
    // Only a signature the key really made can be refused for the key's age.
    const problem = keyWindowProblem(entry, now);
    if (problem) return refuse('KEY_EXPIRED', `${at}: ${problem}`);
    signer = entry;
    break;
  }
  if (!signer) {
    const trusted = [...prepared.keys.keys()].join(', ');
    if (hint && !named) {
      return refuse('UNTRUSTED_KEY', `${at} is signed by key '${hint}', which the policy does not trust, and no trusted key verifies it (trusted: ${trusted})`);
    }
    if (!named && candidates.length > 1) {
      return refuse('BAD_SIGNATURE', `${at} has no key hint and its signature verifies with none of the trusted keys (${trusted}): altered, or signed by another key`);
    }
    return lastRefusal ?? refuse('UNTRUSTED_KEY', `${at}: the policy trusts no key`);
  }

  // The signature is good: what it says can now be believed and checked.
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    return refuse('MALFORMED', `${at} has payloadType ${envelope.payloadType}, expected ${IN_TOTO_PAYLOAD_TYPE}`);
  }
  let statement: Record<string, unknown>;
  try {
    statement = JSON.parse(envelope.payload.toString('utf8')) as Record<string, unknown>;
  } catch {
    return refuse('MALFORMED', `${at}: the signed payload is not JSON`);
  }
  if (statement === null || typeof statement !== 'object') return refuse('MALFORMED', `${at}: the signed payload is not a JSON object`);
  if (statement._type !== IN_TOTO_STATEMENT_V1) {
    return refuse('MALFORMED', `${at}: statement _type is ${String(statement._type)}, expected ${IN_TOTO_STATEMENT_V1}`);
  }
  if (statement.predicateType !== SLSA_PROVENANCE_V1) {
    return refuse('MALFORMED', `${at}: predicateType is ${String(statement.predicateType)}, expected ${SLSA_PROVENANCE_V1}`);
  }

  const hex = req.digest.slice('sha256:'.length);
  const subjects = Array.isArray(statement.subject) ? (statement.subject as { name?: unknown; digest?: { sha256?: unknown } }[]) : [];
  if (!subjects.some((s) => s?.digest?.sha256 === hex)) {
    const named = subjects.map((s) => `${String(s?.name)}@sha256:${String(s?.digest?.sha256)}`).join(', ') || 'nothing';
    return refuse('SUBJECT_MISMATCH', `${at} is about ${named}, not ${req.digest}`);
  }

  const fields = provenanceFields(statement.predicate);
  if (typeof fields === 'string') return refuse('MALFORMED', `${at}: ${fields}`);

  if (!builderTrusted(req.policy, fields.builderId)) {
    return refuse('UNTRUSTED_BUILDER', `built by '${fields.builderId}', which is not a trusted builder (trusted: ${req.policy.builders.join(', ')})`);
  }
  if (!sourceAllowed(req.policy, req.service, fields.sourceRepo, fields.sourceRef)) {
    return refuse(
      'SOURCE_NOT_ALLOWED',
      `built from ${fields.sourceRepo} branch '${branchOf(fields.sourceRef)}', which is not allowed for service '${req.service}' (allowed: ${describeSources(sourcesFor(req.policy, req.service))})`,
    );
  }
  const provenance: VerifiedProvenance = { digest: req.digest, ...fields, keyName: signer.name };
  return { ok: true, provenance };
}

function provenanceFields(predicate: unknown): Omit<VerifiedProvenance, 'digest' | 'keyName'> | string {
  const p = predicate as {
    buildDefinition?: { externalParameters?: { source?: { repo?: unknown; ref?: unknown; commit?: unknown } }; resolvedDependencies?: unknown };
    runDetails?: { builder?: { id?: unknown; version?: unknown }; metadata?: { startedOn?: unknown; finishedOn?: unknown } };
  } | null;
  const builderId = p?.runDetails?.builder?.id;
  if (typeof builderId !== 'string' || !builderId) return 'predicate.runDetails.builder.id is missing';
  const source = p?.buildDefinition?.externalParameters?.source;
  const { repo, ref, commit } = source ?? {};
  if (typeof repo !== 'string' || !repo) return 'predicate.buildDefinition.externalParameters.source.repo is missing';
  if (typeof ref !== 'string' || !ref) return 'predicate.buildDefinition.externalParameters.source.ref is missing';
  if (typeof commit !== 'string' || !commit) return 'predicate.buildDefinition.externalParameters.source.commit is missing';
  const version = p?.runDetails?.builder?.version;
  const builderVersion =
    typeof version === 'string'
      ? version
      : version && typeof version === 'object'
        ? Object.entries(version as Record<string, unknown>).map(([k, v]) => (k === 'slipway' ? String(v) : `${k}=${String(v)}`)).join(', ')
        : undefined;
  const meta = p?.runDetails?.metadata;
  return {
    builderId,
    builderVersion: builderVersion || undefined,
    sourceRepo: repo,
    sourceRef: ref,
    sourceCommit: commit,
    startedOn: typeof meta?.startedOn === 'string' ? meta.startedOn : undefined,
    finishedOn: typeof meta?.finishedOn === 'string' ? meta.finishedOn : undefined,
  };
}

const verifiers = new WeakMap<TrustedKeyEntry, Verifier>();

/** One verifier per trusted key: its key finder answers every hint with that key, within the policy's window. */
function verifierFor(entry: TrustedKeyEntry): Verifier {
  let verifier = verifiers.get(entry);
  if (!verifier) {
    const key = entry.key;
    if (!key) throw new Error(`key '${entry.name}' is not usable`);
    const start = entry.validFrom ?? new Date(0);
    const end = entry.validUntil ?? new Date(8.64e15);
    const finder: KeyFinderFunc = () => ({ publicKey: key, validFor: (date: Date) => start <= date && date <= end });
    verifier = new Verifier(toTrustMaterial(EMPTY_TRUSTED_ROOT, finder), KEY_MODE_THRESHOLDS);
    verifiers.set(entry, verifier);
  }
  return verifier;
}

function signatureRefusal(at: string, keyName: string, err: unknown): Refusal {
  if (err instanceof VerificationError) {
    switch (err.code) {
      case 'SIGNATURE_ERROR':
        return refuse('BAD_SIGNATURE', `${at}: the signature does not verify with trusted key '${keyName}' (the envelope was altered or signed by another key)`);
      case 'PUBLIC_KEY_ERROR':
        return refuse('KEY_EXPIRED', `${at}: ${err.message}`);
      default:
        return refuse('BAD_SIGNATURE', `${at}: ${err.code}: ${err.message}`);
    }
  }
  return refuse('BAD_SIGNATURE', `${at}: ${errorMessage(err)}`);
}

function refuse(code: RefusalCode, message: string): Refusal {
  return { ok: false, code, message };
}
