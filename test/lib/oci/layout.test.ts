import { mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { computeDigest, openImageStore, pullImage, pushImage, REF_NAME_ANNOTATION, MEDIA_TYPES, canonicalJson } from '../../../lib/oci/index.js';
import { smallImage } from '../../support/images.js';

const run = promisify(execFile);
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-layout-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('OCI image layout store', () => {
  describe('when an image is pushed with a tag', () => {
    it('writes a layout that skopeo reads with the same digest', async () => {
      const store = openImageStore(`oci:${dir}`);
      const image = await smallImage();
      const digest = await pushImage(store, image, 'v1');
      expect(digest).toBe(image.digest);
      const layout = JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'));
      expect(layout).toEqual({ imageLayoutVersion: '1.0.0' });
      const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
      expect(index.manifests).toEqual([{ mediaType: MEDIA_TYPES.imageManifest, digest, size: image.manifestBytes.length, annotations: { [REF_NAME_ANNOTATION]: 'v1' } }]);
      const { stdout } = await run('skopeo', ['inspect', '--raw', `oci:${dir}:v1`]);
      expect(computeDigest(Buffer.from(stdout))).toBe(digest);
      const { stdout: cfg } = await run('skopeo', ['inspect', '--config', `oci:${dir}:v1`]);
      expect(JSON.parse(cfg).config.Labels).toEqual({ test: 'test' });
    });

    it('moves the tag when it is pushed again for another image', async () => {
      const store = openImageStore(`oci:${dir}`);
      const a = await smallImage([{ name: 'a', body: 'a' }], 'a');
      const b = await smallImage([{ name: 'b', body: 'b' }], 'b');
      await pushImage(store, a, 'latest');
      await pushImage(store, b, 'latest');
      expect((await store.getManifest('latest'))?.digest).toBe(b.digest);
      expect(await store.listTags()).toEqual(['latest']);
      expect((await store.getManifest(a.digest))?.digest).toBe(a.digest);
    });
  });

  describe('when many writers push at once', () => {
    it('keeps every blob whole and every tag in index.json', async () => {
      const store = openImageStore(`oci:${dir}`);
      const images = await Promise.all(Array.from({ length: 8 }, (_, i) => smallImage([{ name: 'same', body: 'same' }], `img-${i}`)));
      // Two independent store objects on the same directory, as two processes would have.
      const other = openImageStore(`oci:${dir}`);
      await Promise.all(images.map((img, i) => pushImage(i % 2 ? store : other, img, `t${i}`)));
      expect(await store.listTags()).toEqual(images.map((_, i) => `t${i}`).sort());
      for (const img of images) expect((await pullImage(store, img.digest)).layers).toHaveLength(1);
      const leftovers = (await readdir(join(dir, 'blobs', 'sha256'))).filter((n) => n.includes('.tmp-'));
      expect(leftovers).toEqual([]);
    });
  });

  describe('when content does not match its digest', () => {
    it('refuses to store a blob under the wrong digest', async () => {
      const store = openImageStore(`oci:${dir}`);
      await expect(store.putBlob(computeDigest(Buffer.from('x')), Buffer.from('y'))).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    });

    it('refuses a blob that was changed on disk', async () => {
      const store = openImageStore(`oci:${dir}`);
      const image = await smallImage();
      await pushImage(store, image, 'v1');
      await writeFile(join(dir, 'blobs', 'sha256', image.layerDigest.slice(7)), 'tampered');
      await expect(pullImage(store, image.digest)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH', message: expect.stringContaining(image.layerDigest) });
    });

    it('refuses a manifest whose blobs are missing', async () => {
      const store = openImageStore(`oci:${dir}`);
      const image = await smallImage();
      await expect(store.putManifest(image.manifestBytes, MEDIA_TYPES.imageManifest, 'v1')).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
      expect(await store.listTags()).toEqual([]);
    });
  });

  describe('referrers', () => {
    it('finds artifacts whose subject is the image', async () => {
      const store = openImageStore(`oci:${dir}`);
      const image = await smallImage();
      await pushImage(store, image, 'v1');
      const empty = Buffer.from('{}');
      await store.putBlob(computeDigest(empty), empty);
      const layer = Buffer.from('{"payload":"x"}');
      await store.putBlob(computeDigest(layer), layer);
      const artifact = Buffer.from(
        canonicalJson({
          schemaVersion: 2,
          mediaType: MEDIA_TYPES.imageManifest,
          artifactType: MEDIA_TYPES.sigstoreBundle,
          config: { mediaType: MEDIA_TYPES.emptyJson, digest: computeDigest(empty), size: 2 },
          layers: [{ mediaType: MEDIA_TYPES.sigstoreBundle, digest: computeDigest(layer), size: layer.length }],
          subject: { mediaType: MEDIA_TYPES.imageManifest, digest: image.digest, size: image.manifestBytes.length },
        }),
      );
      const artifactDigest = await store.putManifest(artifact, MEDIA_TYPES.imageManifest);
      expect(await store.referrers(image.digest)).toEqual([
        { mediaType: MEDIA_TYPES.imageManifest, digest: artifactDigest, size: artifact.length, artifactType: MEDIA_TYPES.sigstoreBundle },
      ]);
      expect(await store.referrers(image.digest, 'application/other')).toEqual([]);
      expect(await store.referrers(artifactDigest)).toEqual([]);
    });
  });

  it('answers undefined for a manifest that is not there', async () => {
    const store = openImageStore(`oci:${dir}`);
    expect(await store.getManifest('nope')).toBeUndefined();
    expect(await store.getManifest(computeDigest('x'))).toBeUndefined();
    await expect(pullImage(store, computeDigest('x'))).rejects.toMatchObject({ code: 'MANIFEST_NOT_FOUND' });
  });

  describe('a blob written as it is made (startBlobUpload)', () => {
    const parts = [Buffer.from('first part, '), Buffer.alloc(300_000, 7), Buffer.from('and the end')];
    const whole = Buffer.concat(parts);
    const leftovers = async () => (await readdir(join(dir, 'blobs', 'sha256'))).filter((f) => f.startsWith('.'));

    it('lands under its digest with the bytes in order, even when the writes overlap', async () => {
      const store = openImageStore(`oci:${dir}`);
      const upload = await store.startBlobUpload!();
      await Promise.all(parts.map((p) => upload.write(p)));
      await upload.finish(computeDigest(whole), whole.length);
      expect((await store.getBlob(computeDigest(whole))).equals(whole)).toBe(true);
      expect(await leftovers()).toEqual([]);
    });

    it('refuses a digest the bytes do not have, and leaves nothing behind', async () => {
      const store = openImageStore(`oci:${dir}`);
      const upload = await store.startBlobUpload!();
      for (const p of parts) await upload.write(p);
      const claimed = computeDigest('something else');
      await expect(upload.finish(claimed, whole.length)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
      expect(await store.hasBlob(claimed)).toBe(false);
      expect(await leftovers()).toEqual([]);
    });

    it('leaves nothing behind when abandoned', async () => {
      const store = openImageStore(`oci:${dir}`);
      const upload = await store.startBlobUpload!();
      await upload.write(parts[0]!);
      await upload.abort();
      expect(await leftovers()).toEqual([]);
      expect(await store.hasBlob(computeDigest(parts[0]!))).toBe(false);
    });
  });
});
