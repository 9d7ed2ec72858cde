import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  defaultKeyPaths,
  ensureDefaultKey,
  generateKeyPair,
  loadSigningKey,
  parsePublicKey,
  publicKeyFingerprint,
  publicKeyProblem,
} from '../../../lib/keys/index.js';

describe('signing keys', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'slipway-keys-'));
    env = { SLIPWAY_HOME: home };
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));

  describe('a generated key pair', () => {
    it('is ECDSA P-256 in PKCS#8 / SPKI PEM, as openssl reads it', () => {
      const pair = generateKeyPair();
      expect(pair.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      expect(pair.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
      const file = join(home, 'k.pub');
      writeFileSync(file, pair.publicKeyPem);
      const text = execFileSync('openssl', ['pkey', '-pubin', '-in', file, '-noout', '-text'], { encoding: 'utf8' });
      expect(text).toMatch(/NIST CURVE: P-256|prime256v1/);
    });
  });

  describe('the default key', () => {
    it('is created under $SLIPWAY_HOME/keys with a private file only its owner can read', () => {
      const first = ensureDefaultKey({ env });
      expect(first.created).toBe(true);
      expect(first.paths.privateKeyPath).toBe(join(home, 'keys', 'slipway.key'));
      expect(statSync(first.paths.privateKeyPath).mode & 0o777).toBe(0o600);
      expect(readFileSync(first.paths.publicKeyPath, 'utf8')).toBe(first.key.publicKeyPem);
    });

    it('is never overwritten when it already exists', () => {
      const first = ensureDefaultKey({ env });
      const again = ensureDefaultKey({ env });
      expect(again.created).toBe(false);
      expect(again.key.privateKeyPem).toBe(first.key.privateKeyPem);
      expect(readFileSync(first.paths.privateKeyPath, 'utf8')).toBe(first.key.privateKeyPem);
    });

    it('gets its public half rewritten when only that was deleted', () => {
      const first = ensureDefaultKey({ env });
      rmSync(first.paths.publicKeyPath);
      ensureDefaultKey({ env });
      expect(readFileSync(first.paths.publicKeyPath, 'utf8')).toBe(first.key.publicKeyPem);
    });
  });

  describe('loadSigningKey', () => {
    it('prefers --key over SLIPWAY_SIGNING_KEY over the default key', () => {
      const def = ensureDefaultKey({ env }).key;
      const other = generateKeyPair();
      const flagFile = join(home, 'release.pem');
      writeFileSync(flagFile, other.privateKeyPem);
      const third = generateKeyPair();

      expect(loadSigningKey({ env }).publicKeyPem).toBe(def.publicKeyPem);
      const viaEnvPem = loadSigningKey({ env: { ...env, SLIPWAY_SIGNING_KEY: third.privateKeyPem } });
      expect(viaEnvPem).toMatchObject({ source: 'env', name: 'slipway', publicKeyPem: third.publicKeyPem });
      const viaEnvPath = loadSigningKey({ env: { ...env, SLIPWAY_SIGNING_KEY: flagFile } });
      expect(viaEnvPath).toMatchObject({ source: 'env', name: 'release', publicKeyPem: other.publicKeyPem });
      const viaFlag = loadSigningKey({ keyPath: flagFile, env: { ...env, SLIPWAY_SIGNING_KEY: third.privateKeyPem } });
      expect(viaFlag).toMatchObject({ source: 'flag', name: 'release', publicKeyPem: other.publicKeyPem });
    });

    it('reads a SEC1 key written by openssl and derives the same public key openssl does', () => {
      const keyFile = join(home, 'ec.pem');
      execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
      const pub = execFileSync('openssl', ['ec', '-in', keyFile, '-pubout'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const key = loadSigningKey({ keyPath: keyFile, env });
      expect(key.publicKeyPem.trim()).toBe(pub.trim());
      expect(key.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    });

    it('says how to get a key when there is none', () => {
      expect(() => loadSigningKey({ env })).toThrow(/no signing key: pass --key <file>, set SLIPWAY_SIGNING_KEY, or run `slipway init`/);
      expect(existsSync(defaultKeyPaths(env).privateKeyPath)).toBe(false);
    });

    it('names the file it cannot read', () => {
      expect(() => loadSigningKey({ keyPath: join(home, 'missing.pem'), env })).toThrow(/cannot read the signing key .*missing\.pem \(from --key\): ENOENT/);
    });

    it('refuses an RSA key', () => {
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
      expect(() => loadSigningKey({ env: { ...env, SLIPWAY_SIGNING_KEY: rsa.privateKey } })).toThrow('SLIPWAY_SIGNING_KEY must be an ECDSA P-256 key');
      expect(publicKeyProblem(rsa.publicKey)).toBe('the file must be an ECDSA P-256 key, got rsa');
    });
  });

  describe('public keys', () => {
    it('accepts P-256 and refuses other curves and garbage', () => {
      const p256 = generateKeyPair().publicKeyPem;
      expect(parsePublicKey(p256).asymmetricKeyType).toBe('ec');
      const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384', publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }).publicKey;
      expect(publicKeyProblem(p384)).toBe('the file must be an ECDSA P-256 key, got curve secp384r1');
      expect(publicKeyProblem('hello')).toMatch(/^the file is not a PEM public key/);
    });

    it('has a stable fingerprint of its DER encoding', () => {
      const pem = generateKeyPair().publicKeyPem;
      expect(publicKeyFingerprint(pem)).toMatch(/^[0-9a-f]{64}$/);
      expect(publicKeyFingerprint(pem)).toBe(publicKeyFingerprint(pem.replace(/\n/g, '\r\n')));
    });
  });
});
