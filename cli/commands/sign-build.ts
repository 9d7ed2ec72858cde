/**
 * Signing for `slipway build`: adds `--key`, `--keyless` and `--no-sign` to the build command and, through its
 * after-build hook, signs the build's SLSA provenance and attaches it next to the image (cosign `.att` tag
 * plus the sigstore bundle as a referrer). Default: sign with the key `lib/keys` finds; when there is no key at
 * all, the image is pushed unsigned with a warning (every deploy of it will be refused NO_ATTESTATION);
 * `--sign` makes a missing key an error. Must be registered after `build`.
 */
import type { Command } from 'commander';
import { isSlipwayError } from '../../lib/errors.js';
import type { BuildResult } from '../../builder/index.js';
import type { ImageStore } from '../../lib/oci/index.js';
import { addAfterBuildHook } from './build.js';

export interface SigningFlags {
  key?: string;
  keyless?: boolean;
  /** undefined by default, true with --sign, false with --no-sign. */
  sign?: boolean;
}

export function register(program: Command): void {
  const build = program.commands.find((c) => c.name() === 'build');
  if (!build) throw new Error('cli/commands/sign-build must be registered after the build command (cli/commands/index.ts)');
  build
    .option('--key <file>', 'sign the provenance with this ECDSA P-256 private key (PEM; default: SLIPWAY_SIGNING_KEY, then $SLIPWAY_HOME/keys/slipway.key)')
    .option('--keyless', 'sign keylessly with Fulcio and Rekor (needs network access and an OIDC token: SIGSTORE_ID_TOKEN or CI)')
    .option('--sign', 'fail when there is no signing key (default: sign when a key exists)')
    .option('--no-sign', 'push without provenance (the controller refuses to deploy it)');

  addAfterBuildHook(async (result, { store, options }) => signAfterBuild(result, store, options as SigningFlags));
}

/** The after-build step: sign the build's provenance and attach it next to the image, or say why not. */
export async function signAfterBuild(result: BuildResult, store: ImageStore, flags: SigningFlags): Promise<void> {
  if (flags.sign === false) {
    process.stderr.write('unsigned: --no-sign (deploys of this image will be refused NO_ATTESTATION)\n');
    return;
  }
  const explicit = flags.sign === true || !!flags.key || !!flags.keyless || !!process.env.SLIPWAY_SIGNING_KEY || !!process.env.SLIPWAY_SIGNING;
  if (!explicit) {
    // No flag asks for signing: sign only when the default key exists. Checked before sigstore-js is
    // loaded, so an unsigned build (a cache hit above all) does not pay for it.
    const { loadSigningKey } = await import('../../lib/keys/index.js');
    try {
      loadSigningKey({});
    } catch (err) {
      if (isSlipwayError(err) && err.code === 'SIGNING_KEY_NOT_FOUND') {
        process.stderr.write(`unsigned: ${err.message} (deploys of this image will be refused NO_ATTESTATION)\n`);
        return;
      }
      throw err;
    }
  }
  if (result.cached) {
    const reused = await attestedAlready(result, store, flags);
    if (reused) {
      process.stderr.write(`signed: SLSA provenance by key ${reused.keyName} already attached (${reused.origin}); not signed again\n`);
      return;
    }
  }
  const { attestAfterPush, decideSigning } = await import('../../builder/sign/index.js');
  const decision = decideSigning({ sign: flags.sign, key: flags.key, keyless: flags.keyless });
  if (!decision.sign) {
    process.stderr.write(`unsigned: ${decision.reason} (deploys of this image will be refused NO_ATTESTATION)\n`);
    return;
  }
  const signing = decision.signing;
  await attestAfterPush(signing, ({ signed, attached }) => {
    const by = signed.keyName ? `key ${signed.keyName}` : 'keyless (Fulcio certificate, Rekor entry)';
    process.stderr.write(`signed: SLSA provenance by ${by}, attached as ${store.repository}:${attached.attestationTag} and referrer ${attached.referrerManifest.slice(0, 19)}\n`);
  })(result, { store });
}

/**
 * On a cache hit: the attestation the first build attached, when it is signed by the key this build would sign
 * with and says what a new one would (builder/sign/reuse). Keyless signing always signs (a new certificate).
 * Loads node:crypto and lib/attest only, not sigstore-js.
 */
async function attestedAlready(result: BuildResult, store: ImageStore, flags: SigningFlags): Promise<{ keyName: string; origin: string } | undefined> {
  if (flags.keyless || process.env.SLIPWAY_SIGNING?.trim() === 'keyless') return undefined;
  const { loadSigningKey } = await import('../../lib/keys/index.js');
  let key;
  try {
    key = loadSigningKey({ ...(flags.key ? { keyPath: flags.key } : {}) });
  } catch {
    return undefined; // the signing path reports the key problem
  }
  const { findReusableAttestation } = await import('../../builder/sign/reuse/index.js');
  const found = await findReusableAttestation(store, result, key.publicKeyPem);
  return found && { keyName: key.name, origin: found.origin };
}
