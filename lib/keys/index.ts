/**
 * Signing keys: ECDSA P-256, PEM encoded (PKCS#8 private, SPKI public).
 *
 * The default key pair lives under `$SLIPWAY_HOME/keys/` (never inside a repository) and is never
 * overwritten once it exists. `loadSigningKey` resolves the key a build signs with:
 * `--key <path>` → `SLIPWAY_SIGNING_KEY` (a path, or the PEM itself) → the default key.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { SlipwayError } from '../errors.js';
import { slipwayHome } from '../home.js';

export const DEFAULT_KEY_NAME = 'slipway';

export interface KeyPairPem {
  privateKeyPem: string;
  publicKeyPem: string;
}

export interface SigningKey extends KeyPairPem {
  /** Key name: file name without extension, `SLIPWAY_SIGNING_KEY_NAME` for an inline PEM, `slipway` for the default key. */
  name: string;
  /** Where the key came from, for messages: `--key`, `SLIPWAY_SIGNING_KEY` or `default`. */
  source: 'flag' | 'env' | 'default';
  /** File the private key was read from (absent for an inline PEM). */
  path?: string;
}

export interface DefaultKeyPaths {
  dir: string;
  privateKeyPath: string;
  publicKeyPath: string;
}

/** `$SLIPWAY_HOME/keys/slipway.key` and `slipway.pub`. */
export function defaultKeyPaths(env: NodeJS.ProcessEnv = process.env): DefaultKeyPaths {
  const dir = join(slipwayHome(env), 'keys');
  return { dir, privateKeyPath: join(dir, `${DEFAULT_KEY_NAME}.key`), publicKeyPath: join(dir, `${DEFAULT_KEY_NAME}.pub`) };
}

export function generateKeyPair(): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

function isP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

/** Parse a PEM public key and insist on ECDSA P-256. Throws SlipwayError `INVALID_PUBLIC_KEY`. */
export function parsePublicKey(pem: string, where = 'public key'): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new SlipwayError('INVALID_PUBLIC_KEY', `${where} is not a PEM public key (${(err as Error).message})`, 'stalling', {}, { cause: err });
  }
  if (!isP256(key)) {
    const detail = key.asymmetricKeyType === 'ec' ? `curve ${key.asymmetricKeyDetails?.namedCurve}` : String(key.asymmetricKeyType);
    throw new SlipwayError('INVALID_PUBLIC_KEY', `${where} must be an ECDSA P-256 key, got ${detail}`, 'stalling');
  }
  return key;
}

/** Why `pem` is not an acceptable P-256 public key, or undefined when it is. */
export function publicKeyProblem(pem: string): string | undefined {
  try {
    parsePublicKey(pem, 'the file');
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Parse a PEM private key (PKCS#8 or SEC1), insist on P-256, and derive its SPKI public key. */
export function keyPairFromPrivatePem(pem: string, opts: { passphrase?: string; where?: string } = {}): KeyPairPem {
  const where = opts.where ?? 'private key';
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem', ...(opts.passphrase ? { passphrase: opts.passphrase } : {}) });
  } catch (err) {
    throw new SlipwayError('INVALID_SIGNING_KEY', `${where} is not a readable PEM private key (${(err as Error).message})`, 'stalling', {}, { cause: err });
  }
  if (!isP256(key)) throw new SlipwayError('INVALID_SIGNING_KEY', `${where} must be an ECDSA P-256 key`, 'stalling');
  return {
    privateKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** sha256 of the DER SubjectPublicKeyInfo, hex: a stable id for a public key (cosign / sigstore keyid style). */
export function publicKeyFingerprint(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

export interface EnsuredKey {
  created: boolean;
  paths: DefaultKeyPaths;
  key: SigningKey;
}

/**
 * Make the default key pair unless it exists. An existing private key is never overwritten; its public
 * half is (re)written next to it if missing. Files are created exclusively (`wx`), so two concurrent
 * inits cannot clobber each other.
 */
export function ensureDefaultKey(opts: { env?: NodeJS.ProcessEnv } = {}): EnsuredKey {
  const paths = defaultKeyPaths(opts.env ?? process.env);
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  let created = false;
  if (!existsSync(paths.privateKeyPath)) {
    const pair = generateKeyPair();
    try {
      writeFileSync(paths.privateKeyPath, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const pair = keyPairFromPrivatePem(readFileSync(paths.privateKeyPath, 'utf8'), { where: paths.privateKeyPath });
  if (!existsSync(paths.publicKeyPath)) {
    try {
      writeFileSync(paths.publicKeyPath, pair.publicKeyPem, { mode: 0o644, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return { created, paths, key: { name: DEFAULT_KEY_NAME, source: 'default', path: paths.privateKeyPath, ...pair } };
}

function readKeyFile(path: string, source: SigningKey['source'], passphrase: string | undefined): SigningKey {
  const full = resolve(path);
  let pem: string;
  try {
    pem = readFileSync(full, 'utf8');
  } catch (err) {
    const via = source === 'flag' ? '--key' : 'SLIPWAY_SIGNING_KEY';
    throw new SlipwayError('SIGNING_KEY_NOT_FOUND', `cannot read the signing key ${full} (from ${via}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'stalling', { path: full }, { cause: err });
  }
  const name = basename(full, extname(full)) || DEFAULT_KEY_NAME;
  return { name, source, path: full, ...keyPairFromPrivatePem(pem, { passphrase, where: full }) };
}

/**
 * The key a build signs with: `keyPath` (`--key`), else `SLIPWAY_SIGNING_KEY` (a path, or the PEM
 * itself), else the default key under `$SLIPWAY_HOME/keys/`. `SLIPWAY_SIGNING_KEY_PASSWORD` decrypts an
 * encrypted PKCS#8 key. Throws SlipwayError `SIGNING_KEY_NOT_FOUND` / `INVALID_SIGNING_KEY`.
 */
export function loadSigningKey(opts: { keyPath?: string; env?: NodeJS.ProcessEnv } = {}): SigningKey {
  const env = opts.env ?? process.env;
  const passphrase = env.SLIPWAY_SIGNING_KEY_PASSWORD || undefined;
  if (opts.keyPath) return readKeyFile(opts.keyPath, 'flag', passphrase);
  const fromEnv = env.SLIPWAY_SIGNING_KEY?.trim();
  if (fromEnv) {
    if (fromEnv.startsWith('-----BEGIN')) {
      const name = env.SLIPWAY_SIGNING_KEY_NAME || DEFAULT_KEY_NAME;
      return { name, source: 'env', ...keyPairFromPrivatePem(fromEnv, { passphrase, where: 'SLIPWAY_SIGNING_KEY' }) };
    }
    return readKeyFile(fromEnv, 'env', passphrase);
  }
  const paths = defaultKeyPaths(env);
  if (!existsSync(paths.privateKeyPath)) {
    throw new SlipwayError(
      'SIGNING_KEY_NOT_FOUND',
      `no signing key: pass --key <file>, set SLIPWAY_SIGNING_KEY, or run \`slipway init\` to create ${paths.privateKeyPath}`,
      'stalling',
      { path: paths.privateKeyPath },
    );
  }
  const pair = keyPairFromPrivatePem(readFileSync(paths.privateKeyPath, 'utf8'), { passphrase, where: paths.privateKeyPath });
  return { name: DEFAULT_KEY_NAME, source: 'default', path: paths.privateKeyPath, ...pair };
}
