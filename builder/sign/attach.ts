/** What `slipway build` calls after pushing an image: sign its provenance and attach it next to the image. */
import { SlipwayError } from '../../lib/errors.js';
import { attachAttestation, type AttachResult } from '../../lib/attest/index.js';
import type { ImageStore } from '../../lib/oci/index.js';
import type { ProvenanceStatement } from '../../lib/provenance/index.js';
import { buildProvenance, describeBuild, type BuildFacts } from '../provenance/index.js';
import { signStatement, type SignedAttestation, type SigningOptions } from './sign.js';
import type { SigningKeyMaterial } from './key-signer.js';

export interface SignAndAttachRequest {
  store: ImageStore;
  /** The pushed image; the statement must be about exactly this digest. */
  digest: string;
  statement: ProvenanceStatement;
  /** Key mode (the offline default): a P-256 key, e.g. what `lib/keys` `loadSigningKey()` returns. */
  key?: SigningKeyMaterial;
  /** Or the full choice, including keyless (needs network access to Fulcio and Rekor). */
  signing?: SigningOptions;
  /** Recorded on the referrer manifest; default: the statement's finishedOn, so re-attaching is byte-identical. */
  created?: Date;
}

export interface SignAndAttachResult {
  signed: SignedAttestation;
  attached: AttachResult;
}

export async function signAndAttach(req: SignAndAttachRequest): Promise<SignAndAttachResult> {
  const signing: SigningOptions | undefined = req.signing ?? (req.key ? { mode: 'key', key: req.key } : undefined);
  if (!signing) {
    throw new SlipwayError('SIGNING_KEY_NOT_FOUND', 'signAndAttach needs a signing key (key) or signing options (signing)', 'stalling');
  }
  const hex = req.digest.replace(/^sha256:/, '');
  if (!req.statement.subject.some((s) => s.digest.sha256 === hex)) {
    const about = req.statement.subject.map((s) => `sha256:${s.digest.sha256}`).join(', ');
    throw new SlipwayError(
      'SUBJECT_MISMATCH',
      `refusing to sign: the provenance is about ${about || 'nothing'}, not the pushed image ${req.digest}`,
      'stalling',
      { digest: req.digest },
    );
  }
  const finishedOn = req.statement.predicate.runDetails.metadata?.finishedOn;
  const created = req.created ?? (finishedOn ? new Date(finishedOn) : new Date());
  const signed = await signStatement(req.statement, signing);
  const attached = await attachAttestation({
    store: req.store,
    digest: req.digest,
    bundle: signed.bundle,
    predicateType: signed.predicateType,
    created,
  });
  return { signed, attached };
}

/**
 * The `afterPush` hook for `build()`: provenance of the build, signed, attached next to the image.
 * `slipway build` passes `attestAfterPush(resolveSigning({ keyPath, keyless }))`; a failure fails the build.
 */
export function attestAfterPush(
  signing: SigningOptions,
  onAttached?: (result: SignAndAttachResult) => void,
): (build: BuildFacts, ctx: { store: ImageStore }) => Promise<void> {
  return async (build, { store }) => {
    const statement = buildProvenance(describeBuild(build));
    const done = await signAndAttach({ store, digest: build.digest, statement, signing });
    onAttached?.(done);
  };
}
