/** Signs a provenance statement into a sigstore bundle v0.3 holding a DSSE envelope. */
import { bundleToJSON, type SerializedBundle, type SerializedEnvelope } from '@sigstore/bundle';
import {
  CIContextProvider,
  DEFAULT_FULCIO_URL,
  DEFAULT_REKOR_URL,
  DSSEBundleBuilder,
  FulcioSigner,
  RekorWitness,
  type IdentityProvider,
} from '@sigstore/sign';
import { SlipwayError, errorMessage } from '../../lib/errors.js';
import { IN_TOTO_PAYLOAD_TYPE, type ProvenanceStatement } from '../../lib/provenance/index.js';
import { statementBytes } from '../provenance/index.js';
import { createKeySigner, type SigningKeyMaterial } from './key-signer.js';

export type SigningOptions =
  /** Offline: an ECDSA P-256 key, no transparency log, no timestamp authority. */
  | { mode: 'key'; key: SigningKeyMaterial }
  /**
   * Keyless: an ephemeral key certified by Fulcio for an OIDC identity, the signature recorded in Rekor.
   * Needs network access to both; the identity token comes from `identityToken` or the CI environment.
   */
  | { mode: 'keyless'; identityToken?: string; fulcioURL?: string; rekorURL?: string; timeoutMs?: number };

export interface SignedAttestation {
  /** Bundle v0.3 in its JSON form (what is stored in the registry). */
  bundle: SerializedBundle;
  /** The DSSE envelope alone (what cosign's `.att` layer holds). */
  envelope: SerializedEnvelope;
  predicateType: string;
  /** Key hint in key mode; undefined in keyless mode (the certificate names the identity). */
  keyName?: string;
}

export async function signStatement(statement: ProvenanceStatement, options: SigningOptions): Promise<SignedAttestation> {
  const builder = bundleBuilderFor(options);
  let bundle;
  try {
    bundle = await builder.create({ data: statementBytes(statement), type: IN_TOTO_PAYLOAD_TYPE });
  } catch (err) {
    const kind = options.mode === 'keyless' ? 'waiting' : 'generic';
    throw new SlipwayError('SIGNING_FAILED', `signing the provenance failed (${options.mode}): ${errorMessage(err)}`, kind, {}, { cause: err });
  }
  const json = bundleToJSON(bundle);
  if (!json.dsseEnvelope) throw new SlipwayError('SIGNING_FAILED', 'sigstore returned a bundle without a DSSE envelope');
  return {
    bundle: json,
    envelope: json.dsseEnvelope,
    predicateType: statement.predicateType,
    keyName: options.mode === 'key' ? options.key.name : undefined,
  };
}

function bundleBuilderFor(options: SigningOptions): DSSEBundleBuilder {
  switch (options.mode) {
    case 'key':
      return new DSSEBundleBuilder({ signer: createKeySigner(options.key), witnesses: [] });
    case 'keyless': {
      const timeout = options.timeoutMs ?? 30_000;
      const identityProvider: IdentityProvider = options.identityToken
        ? { getToken: async () => options.identityToken as string }
        : new CIContextProvider('sigstore');
      const signer = new FulcioSigner({ identityProvider, fulcioBaseURL: options.fulcioURL ?? DEFAULT_FULCIO_URL, timeout });
      const rekor = new RekorWitness({ rekorBaseURL: options.rekorURL ?? DEFAULT_REKOR_URL, entryType: 'dsse', timeout });
      return new DSSEBundleBuilder({ signer, witnesses: [rekor] });
    }
    default: {
      const never: never = options;
      throw new Error(`unknown signing mode ${JSON.stringify(never)}`);
    }
  }
}
