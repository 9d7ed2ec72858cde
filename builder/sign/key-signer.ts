/** A sigstore-js `Signer` backed by an ECDSA P-256 key on disk (the offline default). */
import { createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import type { Signature, Signer } from '@sigstore/sign';
import { SlipwayError, errorMessage } from '../../lib/errors.js';

/** Shape of what `lib/keys` loads: a named key pair in PEM. */
export interface SigningKeyMaterial {
  name: string;
  privateKeyPem: string;
  publicKeyPem: string;
}

/** sigstore-js verifies ECDSA P-256 with SHA-256; P-384 keys do not verify there, so only P-256 is accepted. */
export const SUPPORTED_CURVE = 'prime256v1';

export class KeySigner implements Signer {
  readonly keyName: string;
  readonly publicKeyPem: string;
  private readonly privateKey: KeyObject;

  constructor(key: SigningKeyMaterial) {
    if (!key.name) throw keyError(key.name, 'has no name (the name is the key hint verifiers look up)');
    this.keyName = key.name;
    this.privateKey = parsePrivateKey(key);
    const publicFromPrivate = createPublicKey(this.privateKey);
    let given: KeyObject;
    try {
      given = createPublicKey(key.publicKeyPem);
    } catch (err) {
      throw keyError(key.name, `public key is not a PEM public key (${errorMessage(err)})`);
    }
    const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
    if (!spki(publicFromPrivate).equals(spki(given))) {
      throw keyError(key.name, 'public key does not belong to the private key');
    }
    this.publicKeyPem = publicFromPrivate.export({ type: 'spki', format: 'pem' }).toString();
  }

  async sign(data: Buffer): Promise<Signature> {
    // DER-encoded ECDSA signature over SHA-256, the encoding sigstore and `openssl dgst -verify` expect.
    const signature = cryptoSign('sha256', data, this.privateKey);
    return { signature, key: { $case: 'publicKey', publicKey: this.publicKeyPem, hint: this.keyName } };
  }
}

export function createKeySigner(key: SigningKeyMaterial): KeySigner {
  return new KeySigner(key);
}

function parsePrivateKey(key: SigningKeyMaterial): KeyObject {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key.privateKeyPem);
  } catch (err) {
    throw keyError(key.name, `private key is not a readable PEM key (${errorMessage(err)})`);
  }
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  if (privateKey.asymmetricKeyType !== 'ec' || curve !== SUPPORTED_CURVE) {
    const what = privateKey.asymmetricKeyType === 'ec' ? `an EC key on ${curve}` : `a ${privateKey.asymmetricKeyType} key`;
    throw keyError(key.name, `is ${what}; Slipway signs with ECDSA P-256 only (make one with \`slipway init\`)`);
  }
  return privateKey;
}

function keyError(name: string, problem: string): SlipwayError {
  return new SlipwayError('SIGNING_KEY_INVALID', `signing key '${name}' ${problem}`, 'stalling', { key: name });
}
