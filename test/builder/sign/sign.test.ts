import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeySigner, signStatement } from '../../../builder/sign/index.js';
import { buildProvenance } from '../../../builder/provenance/index.js';
import { description, digestOf, makeKey } from '../../lib/provenance/fixtures.js';

const DIGEST = digestOf('c');

describe('signing provenance with a key', () => {
  const key = makeKey('release');

  describe('the bundle', () => {
    it('is a sigstore bundle v0.3 holding an in-toto DSSE envelope, hinted with the key name, with no log entries', async () => {
      const signed = await signStatement(buildProvenance(description(DIGEST)), { mode: 'key', key });
      expect(signed.bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
      expect(signed.bundle.verificationMaterial.publicKey).toEqual({ hint: 'release' });
      // bundleToJSON leaves out an empty list: no transparency log entry in key mode.
      expect(signed.bundle.verificationMaterial.tlogEntries ?? []).toEqual([]);
      expect(signed.envelope.payloadType).toBe('application/vnd.in-toto+json');
      expect(signed.envelope.signatures).toHaveLength(1);
      expect(signed.envelope.signatures[0]?.keyid).toBe('release');
      const statement = JSON.parse(Buffer.from(signed.envelope.payload, 'base64').toString('utf8'));
      expect(statement.subject[0].digest.sha256).toBe('c'.repeat(64));
      expect(signed.keyName).toBe('release');
    });
  });

  describe('checked independently of sigstore-js', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'slipway-sign-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    async function opensslVerifies(publicKeyPem: string, mutate: (payload: Buffer) => Buffer = (p) => p): Promise<boolean> {
      const signed = await signStatement(buildProvenance(description(DIGEST)), { mode: 'key', key });
      const payload = mutate(Buffer.from(signed.envelope.payload, 'base64'));
      const type = Buffer.from(signed.envelope.payloadType, 'utf8');
      // DSSE v1 pre-authentication encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
      const pae = Buffer.concat([
        Buffer.from(`DSSEv1 ${type.length} `),
        type,
        Buffer.from(` ${payload.length} `),
        payload,
      ]);
      writeFileSync(join(dir, 'pae.bin'), pae);
      writeFileSync(join(dir, 'sig.der'), Buffer.from(signed.envelope.signatures[0]?.sig ?? '', 'base64'));
      writeFileSync(join(dir, 'pub.pem'), publicKeyPem);
      try {
        const out = execFileSync('openssl', ['dgst', '-sha256', '-verify', 'pub.pem', '-signature', 'sig.der', 'pae.bin'], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
        return out.includes('Verified OK');
      } catch {
        return false;
      }
    }

    it('openssl verifies the DSSE signature over the PAE bytes with the public key', async () => {
      expect(await opensslVerifies(key.publicKeyPem)).toBe(true);
    });

    it('openssl rejects it when one payload byte is flipped', async () => {
      expect(await opensslVerifies(key.publicKeyPem, (p) => { const c = Buffer.from(p); c[10] = (c[10] ?? 0) ^ 1; return c; })).toBe(false);
    });

    it('openssl rejects it against another key', async () => {
      expect(await opensslVerifies(makeKey('other').publicKeyPem)).toBe(false);
    });
  });

  describe('when the key is not usable', () => {
    it('refuses a P-384 key, which sigstore-js cannot verify', () => {
      expect(() => createKeySigner(makeKey('big', 'P-384'))).toThrow(/EC key on secp384r1; Slipway signs with ECDSA P-256 only/);
    });

    it('refuses a public key that belongs to another private key', () => {
      const mixed = { ...makeKey('a'), publicKeyPem: makeKey('b').publicKeyPem };
      expect(() => createKeySigner(mixed)).toThrow(/public key does not belong to the private key/);
    });

    it('refuses text that is not a key', () => {
      expect(() => createKeySigner({ name: 'x', privateKeyPem: 'hello', publicKeyPem: 'hello' })).toThrow(/signing key 'x' private key is not a readable PEM key/);
    });
  });
});
