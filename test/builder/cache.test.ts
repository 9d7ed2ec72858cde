import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildCache, cacheKey, type CacheKeyInput } from '../../builder/index.js';
import { pushImage } from '../../lib/oci/index.js';
import { smallImage } from '../support/images.js';

const input: CacheKeyInput = {
  builderVersion: 'slipway-builder/0.1.0+image.1',
  tree: 'a'.repeat(40),
  commit: 'b'.repeat(40),
  pipelineDigest: `sha256:${'c'.repeat(64)}`,
  plan: ['lint', 'test', 'build'],
  sourceUrl: 'https://git.example/hello.git',
  epoch: 1_767_225_600,
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-cache-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('build cache key', () => {
  it('is the same for the same inputs, whatever the key order', () => {
    const reordered = Object.fromEntries(Object.entries(input).reverse()) as unknown as CacheKeyInput;
    expect(cacheKey(reordered)).toBe(cacheKey(input));
  });

  it.each(Object.keys(input) as (keyof CacheKeyInput)[])('changes when %s changes', (field) => {
    const changed = { ...input, [field]: Array.isArray(input[field]) ? ['lint'] : typeof input[field] === 'number' ? 1 : `${String(input[field])}x` };
    expect(cacheKey(changed)).not.toBe(cacheKey(input));
  });
});

describe('build cache records', () => {
  async function recorded(cache: BuildCache) {
    const image = await smallImage([{ name: 'app/x', body: 'x' }]);
    await pushImage(cache.images, image);
    const key = cacheKey(input);
    await cache.store({ key, digest: image.digest, input, stages: [], startedAt: 'then', createdAt: 'now', layerDigest: image.layerDigest, configDigest: image.configDigest });
    return { key, image };
  }

  it('survives a new cache object (a restart) on the same directory', async () => {
    const { key, image } = await recorded(new BuildCache(dir));
    expect((await new BuildCache(dir).lookup(key))?.digest).toBe(image.digest);
  });

  it('is a miss when the image it names lost a blob', async () => {
    const cache = new BuildCache(dir);
    const { key, image } = await recorded(cache);
    await unlink(join(dir, 'images/blobs/sha256', image.layerDigest.slice(7)));
    expect(await cache.lookup(key)).toBeUndefined();
  });

  it('is a miss for an unknown key and after forget', async () => {
    const cache = new BuildCache(dir);
    const { key } = await recorded(cache);
    expect(await cache.lookup(cacheKey({ ...input, commit: 'd'.repeat(40) }))).toBeUndefined();
    await cache.forget(key);
    expect(await cache.lookup(key)).toBeUndefined();
  });
});
