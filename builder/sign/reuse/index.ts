/**
 * A cache hit returns an image the first build already signed. Signing it again with the same key would
 * only append a near-identical attestation (`fromCache: true`) to the `.att` manifest and add a referrer
 * per hit, and costs sigstore-js's load. So before signing a hit, the attestations attached to the image
 * are read and one is reused when it is a DSSE envelope over an in-toto statement that
 *  - carries a valid ECDSA signature by this key over the DSSE pre-authentication encoding,
 *  - has this image's digest as its subject,
 *  - records the same builder id and the same source (repository, ref and commit) a new signature would.
 * Anything else (no attestation, another key, another ref, a broken one) means: sign again.
 * These are the checks of lib/provenance's verifier that do not depend on a deploy policy, made with
 * node:crypto only: loading that verifier (sigstore-js, yaml, ajv) would cost a cache hit more than the
 * rest of it together (see bench/results/builder.md).
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { fetchAttestations } from '../../../lib/attest/index.js';
import type { ImageStore } from '../../../lib/oci/index.js';
import type { BuildFacts } from '../../provenance/index.js';

/** lib/provenance's IN_TOTO_PAYLOAD_TYPE and SLSA_PROVENANCE_V1 (its index loads the whole verifier). */
const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';

export interface ReusableAttestation {
  /** Where it is attached: `referrer sha256:…` or `sha256-….att layer 0`. */
  origin: string;
}

interface Envelope {
  payload?: unknown;
  payloadType?: unknown;
  signatures?: { sig?: unknown }[];
}

/** The attestation of `build.digest` signed by `publicKeyPem` that a new signature would repeat, if there is one. */
export async function findReusableAttestation(store: ImageStore, build: BuildFacts, publicKeyPem: string): Promise<ReusableAttestation | undefined> {
  let key: KeyObject;
  try {
    key = createPublicKey(publicKeyPem);
  } catch {
    return undefined; // signing reports the unusable key
  }
  const fetched = await fetchAttestations(store, build.digest);
  for (const attestation of fetched.attestations) {
    const envelope = (attestation.bundle as { dsseEnvelope?: Envelope } | null)?.dsseEnvelope;
    if (envelope && repeats(envelope, key, build)) return { origin: attestation.origin };
  }
  return undefined;
}

function repeats(envelope: Envelope, key: KeyObject, build: BuildFacts): boolean {
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE || typeof envelope.payload !== 'string' || !Array.isArray(envelope.signatures)) return false;
  const payload = Buffer.from(envelope.payload, 'base64');
  const signed = preAuthenticationEncoding(IN_TOTO_PAYLOAD_TYPE, payload);
  const byKey = envelope.signatures.some((s) => typeof s?.sig === 'string' && verifies(signed, key, Buffer.from(s.sig, 'base64')));
  if (!byKey) return false;
  let statement: Statement;
  try {
    statement = JSON.parse(payload.toString('utf8')) as Statement;
  } catch {
    return false;
  }
  const hex = build.digest.replace(/^sha256:/, '');
  const source = statement.predicate?.buildDefinition?.externalParameters?.source;
  const ref = build.source.branch ? `refs/heads/${build.source.branch}` : build.source.commit;
  return (
    statement.predicateType === SLSA_PROVENANCE_V1 &&
    Array.isArray(statement.subject) &&
    statement.subject.some((s) => s?.digest?.sha256 === hex) &&
    statement.predicate?.runDetails?.builder?.id === build.builder.id &&
    source?.repo === build.source.url &&
    source.ref === ref &&
    source.commit === build.source.commit
  );
}

interface Statement {
  predicateType?: unknown;
  subject?: { digest?: { sha256?: unknown } }[];
  predicate?: {
    buildDefinition?: { externalParameters?: { source?: { repo?: unknown; ref?: unknown; commit?: unknown } } };
    runDetails?: { builder?: { id?: unknown } };
  };
}

/** DSSE v1: `DSSEv1 <len(type)> <type> <len(body)> <body>`, lengths in bytes as decimal. */
function preAuthenticationEncoding(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType);
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

function verifies(data: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    return verify('sha256', data, key, signature);
  } catch {
    return false;
  }
}
