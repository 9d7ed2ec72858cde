/**
 * Build → sign → attach → verify against real stores (the Debian docker-registry, and an OCI layout
 * directory), and every refusal code produced by a really tampered artifact in that store.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachAttestation, attachBundleReferrer, attestationTag, ATTESTATION_MEDIA_TYPES } from '../../../lib/attest/index.js';
import { computeDigest, openImageStore, pushImage, type ImageStore } from '../../../lib/oci/index.js';
import { VerificationCache, verifyImage, type VerificationResult } from '../../../lib/provenance/index.js';
import { buildProvenance, type BuildDescription } from '../../../builder/provenance/index.js';
import { signAndAttach, signStatement, type SigningKeyMaterial } from '../../../builder/sign/index.js';
import { publicKeyFingerprint } from '../../../lib/keys/index.js';
import type { TrustPolicy } from '../../../schemas/index.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { smallImage } from '../../support/images.js';
import { COMMIT, SOURCE_REPO, description, makeKey, policyTrusting } from './fixtures.js';

const NOW = new Date('2026-11-23T12:00:00Z');
const release = makeKey('release');
const intruder = makeKey('intruder');
const policy = policyTrusting([{ name: 'release' }]);
const publicKeys = { release: release.publicKeyPem };

let registry: TestRegistry;
let layoutDir: string;
let counter = 0;

beforeAll(async () => {
  registry = await startRegistry();
  layoutDir = await mkdtemp(join(tmpdir(), 'slipway-verify-layout-'));
}, 30_000);

afterAll(async () => {
  await registry?.stop();
  if (layoutDir) await rm(layoutDir, { recursive: true, force: true });
});

/** [name, open, whether the store answers referrers itself (else the sha256-<hex> tag fallback is used)] */
const stores: [string, () => ImageStore, boolean][] = [
  ['a distribution registry without a referrers API', () => openImageStore(`${registry.host}/acme/web`), false],
  ['an OCI layout directory', () => openImageStore(`oci:${join(layoutDir, 'web')}`), true],
];

/** A new image in the store (distinct content each time, so each test has its own digest). */
async function pushNewImage(store: ImageStore): Promise<string> {
  const image = await smallImage([{ name: 'app.txt', body: `build ${++counter}\n` }], `image-${counter}`);
  return pushImage(store, image);
}

async function signAndAttachFor(store: ImageStore, digest: string, key: SigningKeyMaterial = release, overrides: Partial<BuildDescription> = {}) {
  const statement = buildProvenance(description(digest, { image: { name: store.repository, digest }, ...overrides }));
  return signAndAttach({ store, digest, statement, key });
}

function verify(store: ImageStore, digest: string, opts: { policy?: TrustPolicy; keys?: Record<string, string>; cache?: VerificationCache; now?: Date } = {}): Promise<VerificationResult> {
  return verifyImage({
    store,
    repository: store.repository,
    digest,
    service: 'web',
    policy: opts.policy ?? policy,
    publicKeys: opts.keys ?? publicKeys,
    now: opts.now ?? NOW,
    cache: opts.cache,
  });
}

function refusalOf(result: VerificationResult): string {
  return result.ok ? 'ACCEPTED' : result.code;
}

describe.each(stores)('provenance verification on %s', (_kind, openStore, hasReferrersApi) => {
  let store: ImageStore;
  beforeAll(() => {
    store = openStore();
  });

  describe('when the builder signed and attached the provenance of a pushed image', () => {
    let digest: string;
    let referrersTagWritten: string | undefined;
    beforeAll(async () => {
      digest = await pushNewImage(store);
      referrersTagWritten = (await signAndAttachFor(store, digest)).attached.referrersTag;
    });

    it('accepts it and says who built it from what', async () => {
      const result = await verify(store, digest);
      expect(result).toEqual({
        ok: true,
        provenance: expect.objectContaining({
          digest,
          builderId: 'https://slipway.dev/builder/v1',
          builderVersion: '0.1.0',
          sourceRepo: SOURCE_REPO,
          sourceRef: 'refs/heads/main',
          sourceCommit: COMMIT,
          keyName: 'release',
        }),
      });
    });

    it('stores the cosign .att manifest with one DSSE layer annotated with the predicate type', async () => {
      const att = await store.getManifest(attestationTag(digest));
      const manifest = JSON.parse(att!.bytes.toString('utf8'));
      expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(manifest.layers).toHaveLength(1);
      expect(manifest.layers[0].mediaType).toBe('application/vnd.dsse.envelope.v1+json');
      expect(manifest.layers[0].annotations.predicateType).toBe('https://slsa.dev/provenance/v1');
    });

    it('stores the sigstore bundle as a referrer of the image', async () => {
      const viaApi = await store.referrers(digest);
      let referrers = viaApi;
      expect(viaApi !== undefined).toBe(hasReferrersApi);
      // The sha256-<hex> tag index is written where there is no referrers API, and in a layout (whose referrers
      // answer is a scan of every manifest) so that reading it is one lookup.
      expect(referrersTagWritten).toBe(`sha256-${digest.slice(7)}`);
      expect(await store.listTags()).toContain(`sha256-${digest.slice(7)}`);
      if (viaApi === undefined) {
        const index = await store.getManifest(`sha256-${digest.slice(7)}`);
        referrers = JSON.parse(index!.bytes.toString('utf8')).manifests;
      }
      expect(referrers).toHaveLength(1);
      const referrer = JSON.parse((await store.getManifest(referrers![0]!.digest))!.bytes.toString('utf8'));
      expect(referrer.artifactType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
      expect(referrer.subject.digest).toBe(digest);
      expect(referrer.layers[0].mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    });

    it('appends a new signature as a second .att layer and never duplicates an identical one', async () => {
      const again = await signAndAttachFor(store, digest);
      expect(again.attached.attestationLayers).toBe(2); // a new signature (ECDSA is randomized) is a second attestation
      const same = await attachAttestation({ store, digest, bundle: again.signed.bundle, predicateType: again.signed.predicateType, created: NOW });
      expect(same.attestationLayers).toBe(2);
      expect(refusalOf(await verify(store, digest))).toBe('ACCEPTED');
    });

    it('answers a second verification from the cache without reading the store', async () => {
      const cache = new VerificationCache();
      expect(refusalOf(await verify(store, digest, { cache }))).toBe('ACCEPTED');
      expect(cache.misses).toBe(1);
      const broken = { ...store, repository: store.repository, getManifest: () => Promise.reject(new Error('the store was read')) } as unknown as ImageStore;
      expect(refusalOf(await verify(broken, digest, { cache }))).toBe('ACCEPTED');
      expect(cache.hits).toBe(1);
    });

    it('does not reuse the cached answer under another policy', async () => {
      const cache = new VerificationCache();
      expect(refusalOf(await verify(store, digest, { cache }))).toBe('ACCEPTED');
      const stricter = policyTrusting([{ name: 'release' }], { builders: ['https://ci.example/builder'] });
      expect(refusalOf(await verify(store, digest, { cache, policy: stricter }))).toBe('UNTRUSTED_BUILDER');
    });
  });

  describe('refuses', () => {
    it('NO_ATTESTATION for an image nobody signed', async () => {
      const digest = await pushNewImage(store);
      const result = await verify(store, digest);
      expect(refusalOf(result)).toBe('NO_ATTESTATION');
    });

    it('BAD_SIGNATURE when one byte of the signed payload is flipped', async () => {
      const digest = await pushNewImage(store);
      const statement = buildProvenance(description(digest));
      const signed = await signStatement(statement, { mode: 'key', key: release });
      const payload = Buffer.from(signed.bundle.dsseEnvelope!.payload, 'base64');
      const at = payload.indexOf('refs/heads/main') + 'refs/heads/'.length;
      payload[at] = payload[at]! ^ 0x01; // "main" becomes "lain": still JSON, no longer what was signed
      const tampered = structuredClone(signed.bundle);
      tampered.dsseEnvelope!.payload = payload.toString('base64');
      await attachAttestation({ store, digest, bundle: tampered, predicateType: signed.predicateType, created: NOW });
      const result = await verify(store, digest);
      expect(refusalOf(result)).toBe('BAD_SIGNATURE');
    });

    it('BAD_SIGNATURE when another key signed but names the trusted key', async () => {
      const digest = await pushNewImage(store);
      await signAndAttachFor(store, digest, { ...intruder, name: 'release' });
      expect(refusalOf(await verify(store, digest))).toBe('BAD_SIGNATURE');
    });

    it('UNTRUSTED_KEY when a key the policy does not list signed it', async () => {
      const digest = await pushNewImage(store);
      await signAndAttachFor(store, digest, intruder);
      const result = await verify(store, digest);
      expect(refusalOf(result)).toBe('UNTRUSTED_KEY');
      expect(result.ok ? '' : result.message).toMatch(/'intruder'.*trusted: release/);
    });

    it('SUBJECT_MISMATCH when the attestation is about another digest', async () => {
      const other = await pushNewImage(store);
      const digest = await pushNewImage(store);
      const signed = await signStatement(buildProvenance(description(other)), { mode: 'key', key: release });
      await attachAttestation({ store, digest, bundle: signed.bundle, predicateType: signed.predicateType, created: NOW });
      const result = await verify(store, digest);
      expect(refusalOf(result)).toBe('SUBJECT_MISMATCH');
      expect(result.ok ? '' : result.message).toContain(other);
    });

    it('UNTRUSTED_BUILDER when the builder id is not in the policy', async () => {
      const digest = await pushNewImage(store);
      await signAndAttachFor(store, digest, release, { builderId: 'https://laptop.example/builder' });
      const result = await verify(store, digest);
      expect(refusalOf(result)).toBe('UNTRUSTED_BUILDER');
      expect(result.ok ? '' : result.message).toContain('https://laptop.example/builder');
    });

    it('SOURCE_NOT_ALLOWED when the source repository is not allowed for the service', async () => {
      const digest = await pushNewImage(store);
      await signAndAttachFor(store, digest, release, { source: { repo: 'https://git.example/forks/web', ref: 'refs/heads/main', commit: COMMIT } });
      expect(refusalOf(await verify(store, digest))).toBe('SOURCE_NOT_ALLOWED');
    });

    it('SOURCE_NOT_ALLOWED when the branch is not allowed for the service', async () => {
      const digest = await pushNewImage(store);
      await signAndAttachFor(store, digest, release, { source: { repo: SOURCE_REPO, ref: 'refs/heads/feature/try', commit: COMMIT } });
      const result = await verify(store, digest);
      expect(refusalOf(result)).toBe('SOURCE_NOT_ALLOWED');
      expect(result.ok ? '' : result.message).toContain("branch 'feature/try'");
    });

    it('KEY_EXPIRED when the signing key is past its validity period, even with a cached acceptance', async () => {
      const digest = await pushNewImage(store);
      await signAndAttachFor(store, digest);
      const windowed = policyTrusting([{ name: 'release', validFrom: '2026-01-01T00:00:00Z', validUntil: '2026-12-31T23:59:59Z' }]);
      const cache = new VerificationCache();
      expect(refusalOf(await verify(store, digest, { policy: windowed, cache }))).toBe('ACCEPTED');
      const result = await verify(store, digest, { policy: windowed, cache, now: new Date('2027-01-02T00:00:00Z') });
      expect(refusalOf(result)).toBe('KEY_EXPIRED');
      expect(result.ok ? '' : result.message).toContain('expired at 2026-12-31T23:59:59.000Z');
    });

    it('MALFORMED when the stored bundle is truncated', async () => {
      const digest = await pushNewImage(store);
      const signed = await signStatement(buildProvenance(description(digest)), { mode: 'key', key: release });
      const bytes = Buffer.from(JSON.stringify(signed.bundle));
      await attachBundleReferrer({ store, digest, bundleBytes: bytes.subarray(0, bytes.length - 40), predicateType: signed.predicateType, created: NOW });
      const result = await verify(store, digest);
      expect(refusalOf(result)).toBe('MALFORMED');
      expect(result.ok ? '' : result.message).toMatch(/sigstore bundle is not JSON/);
    });

    it('MALFORMED when the .att manifest carries the envelope under the wrong media type', async () => {
      const digest = await pushNewImage(store);
      const signed = await signStatement(buildProvenance(description(digest)), { mode: 'key', key: release });
      const envelope = Buffer.from(JSON.stringify(signed.envelope));
      const config = Buffer.from('{}');
      await store.putBlob(computeDigest(envelope), envelope);
      await store.putBlob(computeDigest(config), config);
      const manifest = {
        schemaVersion: 2,
        mediaType: ATTESTATION_MEDIA_TYPES.imageManifest,
        config: { mediaType: ATTESTATION_MEDIA_TYPES.imageConfig, digest: computeDigest(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: computeDigest(envelope), size: envelope.length, annotations: { predicateType: signed.predicateType } }],
      };
      await store.putManifest(Buffer.from(JSON.stringify(manifest)), ATTESTATION_MEDIA_TYPES.imageManifest, attestationTag(digest));
      const result = await verify(store, digest);
      expect(refusalOf(result)).toBe('MALFORMED');
      expect(result.ok ? '' : result.message).toContain('expected application/vnd.dsse.envelope.v1+json');
    });
  });

  describe('when another tool signed it', () => {
    it('tries every trusted key when only cosign’s .att layer is there with no key hint (what `cosign attest` writes)', async () => {
      const digest = await pushNewImage(store);
      const signed = await signStatement(buildProvenance(description(digest)), { mode: 'key', key: release });
      const envelope = { ...signed.envelope, signatures: signed.envelope.signatures.map((s) => ({ ...s, keyid: '' })) };
      const bytes = Buffer.from(JSON.stringify(envelope));
      const config = Buffer.from('{}');
      await store.putBlob(computeDigest(bytes), bytes);
      await store.putBlob(computeDigest(config), config);
      const manifest = {
        schemaVersion: 2,
        mediaType: ATTESTATION_MEDIA_TYPES.imageManifest,
        config: { mediaType: ATTESTATION_MEDIA_TYPES.imageConfig, digest: computeDigest(config), size: config.length },
        layers: [{ mediaType: ATTESTATION_MEDIA_TYPES.dsseEnvelope, digest: computeDigest(bytes), size: bytes.length, annotations: { predicateType: signed.predicateType } }],
      };
      await store.putManifest(Buffer.from(JSON.stringify(manifest)), ATTESTATION_MEDIA_TYPES.imageManifest, attestationTag(digest));
      const keys = { other: intruder.publicKeyPem, release: release.publicKeyPem };
      const result = await verify(store, digest, { policy: policyTrusting([{ name: 'other' }, { name: 'release' }]), keys });
      expect(result.ok && result.provenance.keyName).toBe('release');
    });

    it('finds the trusted key by its sha256 fingerprint when that is the key id', async () => {
      const digest = await pushNewImage(store);
      const signed = await signStatement(buildProvenance(description(digest)), { mode: 'key', key: release });
      const fingerprint = publicKeyFingerprint(release.publicKeyPem);
      const bundle = structuredClone(signed.bundle);
      bundle.verificationMaterial.publicKey = { hint: fingerprint };
      bundle.dsseEnvelope!.signatures[0]!.keyid = fingerprint;
      await attachAttestation({ store, digest, bundle, predicateType: signed.predicateType, created: NOW });
      const result = await verify(store, digest);
      expect(result.ok && result.provenance.keyName).toBe('release');
    });
  });
});
