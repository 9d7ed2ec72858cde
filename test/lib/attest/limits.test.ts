/** A store cannot make verification read huge blobs or thousands of attestations. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ATTESTATION_MEDIA_TYPES as MT, attestationTag, fetchAttestations } from '../../../lib/attest/index.js';
import { computeDigest, openImageStore, pushImage, type ImageStore } from '../../../lib/oci/index.js';
import { smallImage } from '../../support/images.js';

let dir: string;
let store: ImageStore;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-attest-limits-'));
  store = openImageStore(`oci:${dir}`);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function attManifest(digest: string, layers: { bytes: Buffer; claimedSize?: number }[]): Promise<void> {
  const config = Buffer.from('{}');
  await store.putBlob(computeDigest(config), config);
  for (const l of layers) await store.putBlob(computeDigest(l.bytes), l.bytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: MT.imageManifest,
    config: { mediaType: MT.imageConfig, digest: computeDigest(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: MT.dsseEnvelope, digest: computeDigest(l.bytes), size: l.claimedSize ?? l.bytes.length })),
  };
  await store.putManifest(Buffer.from(JSON.stringify(manifest)), MT.imageManifest, attestationTag(digest));
}

describe('reading attestations', () => {
  it('does not fetch a layer that claims to be larger than 4 MiB', async () => {
    const digest = await pushImage(store, await smallImage([{ name: 'a', body: 'big\n' }]));
    await attManifest(digest, [{ bytes: Buffer.from('{"payload":"x"}'), claimedSize: 50 * 1024 * 1024 }]);
    const fetched = await fetchAttestations(store, digest);
    expect(fetched.attestations).toEqual([]);
    expect(fetched.problems[0]?.message).toMatch(/52428800 bytes, more than the 4194304 read/);
  });

  it('reads at most 64 attachments and says so', async () => {
    const digest = await pushImage(store, await smallImage([{ name: 'a', body: 'many\n' }]));
    const layers = Array.from({ length: 70 }, (_, i) => ({ bytes: Buffer.from(JSON.stringify({ payloadType: 't', payload: Buffer.from(String(i)).toString('base64'), signatures: [{ sig: 'c2ln', keyid: '' }] })) }));
    await attManifest(digest, layers);
    const fetched = await fetchAttestations(store, digest);
    expect(fetched.attestations).toHaveLength(64);
    expect(fetched.problems.map((p) => p.message)).toContain(`${attestationTag(digest)} lists 70 attachments; only the first 64 are read`);
  });
});
