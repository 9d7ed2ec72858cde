/**
 * Which way a build signs: keyless (Fulcio + Rekor, needs the network and an OIDC token) when asked for with
 * `--keyless` or `SLIPWAY_SIGNING=keyless`, otherwise the ECDSA P-256 key `lib/keys` resolves
 * (`--key` → `SLIPWAY_SIGNING_KEY` → `$SLIPWAY_HOME/keys/slipway.key`).
 */
import { SlipwayError } from '../../lib/errors.js';
import { loadSigningKey } from '../../lib/keys/index.js';
import type { SigningOptions } from './sign.js';

export interface SigningChoice {
  keyless?: boolean;
  /** `--key <file>`. */
  keyPath?: string;
  /** Keyless only; default: `SIGSTORE_ID_TOKEN` or the CI provider's token (GitHub Actions). */
  identityToken?: string;
  env?: NodeJS.ProcessEnv;
}

export function resolveSigning(choice: SigningChoice = {}): SigningOptions {
  const env = choice.env ?? process.env;
  const mode = env.SLIPWAY_SIGNING?.trim();
  if (mode && mode !== 'key' && mode !== 'keyless') {
    throw new SlipwayError('INVALID_SIGNING_MODE', `SLIPWAY_SIGNING is "${mode}": use key (the default) or keyless`, 'stalling');
  }
  const keyless = choice.keyless ?? mode === 'keyless';
  if (keyless) {
    if (choice.keyPath) {
      throw new SlipwayError('INVALID_SIGNING_MODE', '--key and keyless signing exclude each other: keyless signs with an ephemeral key certified by Fulcio', 'stalling');
    }
    const options: SigningOptions = { mode: 'keyless' };
    const token = choice.identityToken ?? env.SIGSTORE_ID_TOKEN;
    if (token) options.identityToken = token;
    if (env.SLIPWAY_FULCIO_URL) options.fulcioURL = env.SLIPWAY_FULCIO_URL;
    if (env.SLIPWAY_REKOR_URL) options.rekorURL = env.SLIPWAY_REKOR_URL;
    return options;
  }
  const key = loadSigningKey({ keyPath: choice.keyPath, env });
  return { mode: 'key', key: { name: key.name, privateKeyPem: key.privateKeyPem, publicKeyPem: key.publicKeyPem } };
}
