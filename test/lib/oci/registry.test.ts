import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeDigest, openImageStore, pullImage, pushImage, retryAfterMs, unpackLayers, type ImageStore } from '../../../lib/oci/index.js';
import { freePort, skopeo, startAuthProxy, startRegistry, type TestRegistry } from '../../support/registry.js';
import { smallImage } from '../../support/images.js';
import { readFile } from 'node:fs/promises';

const fast = { retry: { attempts: 3, baseDelayMs: 5 } };
let registry: TestRegistry;
let tmp: string;

beforeAll(async () => {
  registry = await startRegistry();
  tmp = await mkdtemp(join(tmpdir(), 'slipway-registry-test-'));
});
afterAll(async () => {
  await registry?.stop();
  await rm(tmp, { recursive: true, force: true });
});

describe('distribution registry store', () => {
  describe('when an image is pushed', () => {
    let store: ImageStore;
    let image: Awaited<ReturnType<typeof smallImage>>;

    beforeAll(async () => {
      store = openImageStore(`${registry.host}/hello`, fast);
      image = await smallImage([{ name: 'srv/app.js', body: 'console.log("hi")\n' }]);
      await pushImage(store, image, 'v1');
    });

    it('is read back by skopeo with the same digest and config', async () => {
      const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/hello@${image.digest}`]);
      expect(computeDigest(Buffer.from(raw))).toBe(image.digest);
      const info = JSON.parse(await skopeo(['inspect', '--no-tags', '--tls-verify=false', `docker://${registry.host}/hello:v1`]));
      expect(info.Digest).toBe(image.digest);
      expect(info.Labels).toEqual({ test: 'test' });
    });

    it('survives a skopeo copy with preserved digests, and pulls back what skopeo pushed', async () => {
      const layout = join(tmp, 'copied');
      await skopeo(['copy', '--preserve-digests', '--src-tls-verify=false', `docker://${registry.host}/hello@${image.digest}`, `oci:${layout}:copied`]);
      const fromLayout = openImageStore(`oci:${layout}`);
      expect((await fromLayout.getManifest('copied'))?.digest).toBe(image.digest);
      await skopeo(['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:copied`, `docker://${registry.host}/mirror:m1`]);
      const mirror = openImageStore(`${registry.host}/mirror`, fast);
      const pulled = await pullImage(mirror, image.digest);
      await unpackLayers(pulled.layers, join(tmp, 'rootfs'));
      expect(await readFile(join(tmp, 'rootfs/srv/app.js'), 'utf8')).toBe('console.log("hi")\n');
      expect(await mirror.listTags()).toEqual(['m1']);
    });

    it('answers undefined for the referrers API distribution 2.8 does not have, and for unknown manifests', async () => {
      expect(await store.referrers(image.digest)).toBeUndefined();
      expect(await store.getManifest(computeDigest('nothing'))).toBeUndefined();
      expect(await store.getManifest('no-such-tag')).toBeUndefined();
      expect(await openImageStore(`${registry.host}/never-pushed`, fast).listTags()).toEqual([]);
    });
  });

  describe('when the blobs are already there', () => {
    it('skips the upload (HEAD only)', async () => {
      const proxy = await startAuthProxy(registry);
      try {
        const store = openImageStore(`${proxy.host}/skip`, fast);
        const image = await smallImage([{ name: 'x', body: 'skip' }]);
        await pushImage(store, image);
        const firstUploads = proxy.log.filter((l) => l.method === 'POST').length;
        await pushImage(store, image);
        expect(firstUploads).toBe(2);
        expect(proxy.log.filter((l) => l.method === 'POST').length).toBe(2);
      } finally {
        await proxy.stop();
      }
    });
  });

  describe('when the registry answers 503 a few times', () => {
    it('retries and succeeds', async () => {
      const proxy = await startAuthProxy(registry, { fault: { status: 503, count: 2 } });
      try {
        const store = openImageStore(`${proxy.host}/flaky`, fast);
        const image = await smallImage([{ name: 'x', body: 'flaky' }]);
        expect(await pushImage(store, image, 'v1')).toBe(image.digest);
        expect(proxy.log.filter((l) => l.status === 503)).toHaveLength(2);
      } finally {
        await proxy.stop();
      }
    });

    it('waits at least as long as a 429 Retry-After asks, then succeeds', async () => {
      const proxy = await startAuthProxy(registry, { fault: { status: 429, count: 1, retryAfter: '1' } });
      try {
        const store = openImageStore(`${proxy.host}/throttled`, { retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 5_000 } });
        expect(await store.listTags()).toEqual([]);
        const [throttled, next] = proxy.log;
        expect(throttled!.status).toBe(429);
        expect(next!.at - throttled!.at).toBeGreaterThanOrEqual(900);
      } finally {
        await proxy.stop();
      }
    });

    it('does not retry a 400', async () => {
      const proxy = await startAuthProxy(registry, { fault: { status: 400, count: 5 } });
      try {
        const store = openImageStore(`${proxy.host}/bad`, fast);
        await expect(store.hasBlob(computeDigest('x'))).rejects.toMatchObject({ code: 'REGISTRY_ERROR', message: expect.stringContaining('HTTP 400') });
        expect(proxy.log).toHaveLength(1);
      } finally {
        await proxy.stop();
      }
    });
  });

  describe('when manifest pushes keep failing', () => {
    it('reports the failure and the manifest is not in the registry', async () => {
      const proxy = await startAuthProxy(registry, { fault: { status: 503, count: 100, match: /manifests/ } });
      try {
        const store = openImageStore(`${proxy.host}/half`, fast);
        const image = await smallImage([{ name: 'x', body: 'half' }]);
        await expect(pushImage(store, image, 'v1')).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE', kind: 'waiting' });
        const direct = openImageStore(`${registry.host}/half`, fast);
        expect(await direct.getManifest(image.digest)).toBeUndefined();
        expect(await direct.listTags()).toEqual([]);
      } finally {
        await proxy.stop();
      }
    });
  });

  describe('when the registry is down', () => {
    it('says it is unavailable after retrying', async () => {
      const port = await freePort();
      const store = openImageStore(`127.0.0.1:${port}/hello`, fast);
      await expect(store.hasBlob(computeDigest('x'))).rejects.toMatchObject({
        code: 'REGISTRY_UNAVAILABLE',
        message: expect.stringContaining('ECONNREFUSED'),
      });
    });
  });

  describe('when the registry serves content that does not match its digest', () => {
    it('refuses a tampered blob and a tampered manifest', async () => {
      const image = await smallImage([{ name: 'x', body: 'tamper' }]);
      await pushImage(openImageStore(`${registry.host}/tamper`, fast), image);
      const blobProxy = await startAuthProxy(registry, { tamper: { match: /blobs/, body: (b) => Buffer.concat([b, Buffer.from('!')]) } });
      const manifestProxy = await startAuthProxy(registry, { tamper: { match: /manifests/, body: (b) => Buffer.from(b.toString().replace('"schemaVersion":2', '"schemaVersion":2 ')) } });
      try {
        await expect(pullImage(openImageStore(`${blobProxy.host}/tamper`, fast), image.digest)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
        await expect(pullImage(openImageStore(`${manifestProxy.host}/tamper`, fast), image.digest)).rejects.toMatchObject({
          code: 'DIGEST_MISMATCH',
          message: expect.stringContaining('refusing'),
        });
      } finally {
        await blobProxy.stop();
        await manifestProxy.stop();
      }
    });
  });
});

describe('registry with Basic auth (htpasswd)', () => {
  let secured: TestRegistry;
  beforeAll(async () => {
    secured = await startRegistry({ users: { ci: 's3cret' } });
  });
  afterAll(async () => {
    await secured?.stop();
  });

  it('pushes and pulls with the right credentials', async () => {
    const store = openImageStore(`${secured.host}/private`, { ...fast, credentials: { username: 'ci', password: 's3cret' } });
    const image = await smallImage();
    await pushImage(store, image, 'v1');
    expect((await pullImage(store, image.digest)).manifest.layers).toHaveLength(1);
  });

  it('reads credentials from SLIPWAY_REGISTRY_USERNAME/PASSWORD', async () => {
    const store = openImageStore(`${secured.host}/private`, { ...fast, env: { SLIPWAY_REGISTRY_USERNAME: 'ci', SLIPWAY_REGISTRY_PASSWORD: 's3cret' } });
    expect(await store.listTags()).toEqual(['v1']);
  });

  it.each([
    ['no credentials', {}, 'SLIPWAY_REGISTRY_USERNAME'],
    ['a wrong password', { credentials: { username: 'ci', password: 'nope' } }, 'refused the credentials of user "ci"'],
  ])('refuses %s with REGISTRY_AUTH', async (_what, opts, message) => {
    const store = openImageStore(`${secured.host}/private`, { ...fast, env: {}, ...opts });
    await expect(pushImage(store, await smallImage([{ name: 'y', body: 'y' }]))).rejects.toMatchObject({ code: 'REGISTRY_AUTH', kind: 'stalling', message: expect.stringContaining(message) });
  });
});

describe('registry with Bearer token auth', () => {
  it('gets a token for the scope it needs and pushes', async () => {
    const proxy = await startAuthProxy(registry, { users: { bot: 'pw' } });
    try {
      const store = openImageStore(`${proxy.host}/tokens`, { ...fast, credentials: { username: 'bot', password: 'pw' } });
      const image = await smallImage([{ name: 'z', body: 'bearer' }]);
      await pushImage(store, image, 'v1');
      expect((await pullImage(store, image.digest)).digest).toBe(image.digest);
      expect(proxy.tokenRequests.map((t) => t.scope)).toEqual(expect.arrayContaining(['repository:tokens:pull', 'repository:tokens:pull,push']));
      expect(proxy.tokenRequests.every((t) => t.user === 'bot')).toBe(true);
    } finally {
      await proxy.stop();
    }
  });

  it('refuses when the token endpoint refuses', async () => {
    const proxy = await startAuthProxy(registry, { users: { bot: 'pw' } });
    try {
      const store = openImageStore(`${proxy.host}/tokens`, { ...fast, env: {}, credentials: { username: 'bot', password: 'wrong' } });
      await expect(store.listTags()).rejects.toMatchObject({ code: 'REGISTRY_AUTH', message: expect.stringContaining('token endpoint') });
    } finally {
      await proxy.stop();
    }
  });
});

describe('Retry-After', () => {
  it.each([
    ['3', 3000],
    ['Thu, 01 Jan 2026 00:00:05 GMT', 5000],
    ['Wed, 31 Dec 2025 00:00:00 GMT', 0],
    ['soon', undefined],
    [null, undefined],
  ])('reads %s as %s ms', (header, expected) => {
    expect(retryAfterMs(header, Date.parse('2026-01-01T00:00:00Z'))).toBe(expected);
  });
});
