/** In an OCI layout, a bundle another tool attached as a plain subject referrer (no tag index) is still found. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ATTESTATION_MEDIA_TYPES as MT, fetchAttestations } from '../../../lib/attest/index.js';
import { computeDigest, openImageStore, pushImage, type ImageStore } from '../../../lib/oci/index.js';
import { verifyImage } from '../../../lib/provenance/index.js';
import { smallImage } from '../../support/images.js';
import { makeKey, policyTrusting, signedBundle } from '../provenance/fixtures.js';

let dir: string;
let store: ImageStore;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-layout-referrers-'));
  store = openImageStore(`oci:${dir}`);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('a referrer written by another tool into an OCI layout', () => {
  it('is found by scanning the layout when there is no sha256-<hex> tag, and verifies', async () => {
    const key = makeKey('release');
    const image = await smallImage([{ name: 'a', body: 'other tool\n' }]);
    const digest = await pushImage(store, image);
    const signed = await signedBundle(key, digest);
    const bundle = Buffer.from(JSON.stringify(signed.bundle));
    const empty = Buffer.from('{}');
    await store.putBlob(computeDigest(bundle), bundle);
    await store.putBlob(computeDigest(empty), empty);
    const manifest = {
      schemaVersion: 2,
      mediaType: MT.imageManifest,
      artifactType: MT.sigstoreBundle,
      config: { mediaType: MT.emptyJson, digest: computeDigest(empty), size: 2 },
      layers: [{ mediaType: MT.sigstoreBundle, digest: computeDigest(bundle), size: bundle.length }],
      subject: { mediaType: MT.imageManifest, digest, size: image.manifestBytes.length },
    };
    await store.putManifest(Buffer.from(JSON.stringify(manifest)), MT.imageManifest);
    expect(await store.listTags()).not.toContain(`sha256-${digest.slice(7)}`);

    const fetched = await fetchAttestations(store, digest);
    expect(fetched.referrersVia).toBe('api');
    expect(fetched.attestations).toHaveLength(1);
    const result = await verifyImage({ store, repository: store.repository, digest, service: 'web', policy: policyTrusting([{ name: 'release' }]), publicKeys: { release: key.publicKeyPem } });
    expect(result.ok).toBe(true);
  });
});
