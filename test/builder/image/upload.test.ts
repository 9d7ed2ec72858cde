import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../../../builder/image/index.js';
import { OciLayoutStore, pullImage, pushImage, RegistryStore } from '../../../lib/oci/index.js';
import { skopeo, startAuthProxy, startRegistry, type AuthProxy, type TestRegistry } from '../../support/registry.js';

const epoch = 1_767_225_600;
const spec = { context: 'dist', entrypoint: ['node', 'part0/f0.js'], workingDir: '/app' };
const source = { url: 'https://git.example/upload.git', revision: 'd'.repeat(40) };
const users = { ci: 'secret' };

let tmp: string;
let context: string;
let registry: TestRegistry;
let proxy: AuthProxy;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'slipway-layer-upload-'));
  context = join(tmp, 'dist');
  // ~2.5 MiB of poorly compressible files: a layer of several blocks, streamed in several pieces.
  for (let i = 0; i < 40; i++) {
    await mkdir(join(context, `part${i % 4}`), { recursive: true });
    const bytes = Buffer.alloc(64 * 1024);
    let x = i + 7;
    for (let o = 0; o < bytes.length; o++) bytes[o] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    await writeFile(join(context, `part${i % 4}`, `f${i}.js`), bytes);
  }
  registry = await startRegistry();
  proxy = await startAuthProxy(registry, { users });
});
afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  await rm(tmp, { recursive: true, force: true });
});

const layerRequests = (since: number) => proxy.log.slice(since).filter((r) => /\/blobs\/uploads\/.+/.test(r.path));

describe('streaming the layer to a registry while it is compressed', () => {
  it('uploads the layer during the build (one PATCH, one PUT, behind Bearer auth) and the config as it finishes, so the push only adds the manifest', async () => {
    const store = new RegistryStore(`${proxy.host}/streamed`, { credentials: { username: 'ci', password: 'secret' } });
    const before = proxy.log.length;
    const image = await buildImage({ contextDir: context, spec, source, epoch, uploadTo: store });
    expect(await store.hasBlob(image.layer.digest)).toBe(true);
    expect(await store.hasBlob(image.configDigest)).toBe(true);
    // The layer's PATCH and PUT, and the config's single PUT, in whatever order the two finished.
    expect(layerRequests(before).map((r) => `${r.method} ${r.status}`).sort()).toEqual(['PATCH 202', 'PUT 201', 'PUT 201']);

    const afterBuild = proxy.log.length;
    await pushImage(store, image);
    // Nothing more is uploaded by the push, nor asked about (the build saw both blobs committed): only the manifest goes.
    expect(proxy.log.slice(afterBuild).map((r) => `${r.method} ${r.path}`)).toEqual([`PUT /v2/streamed/manifests/${image.digest}`]);
    expect(image.blobs[1]!.bytes).toBeUndefined(); // streamed, not kept
    const pulled = await pullImage(store, image.digest);
    const plain = await buildImage({ contextDir: context, spec, source, epoch });
    expect(pulled.layers[0]!.bytes.equals(plain.blobs[1]!.bytes!)).toBe(true);
    const inspected = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/streamed@${image.digest}`]));
    expect(inspected.layers[0].digest).toBe(image.layer.digest);
  });

  it('streams to a registry and an OCI layout at once; both have the layer, and neither upload left anything else behind', async () => {
    const store = new RegistryStore(`${registry.host}/teed`);
    const layout = new OciLayoutStore(join(tmp, 'teed-layout'));
    const image = await buildImage({ contextDir: context, spec, source, epoch, uploadTo: [store, layout] });
    expect(image.blobs[1]!.bytes).toBeUndefined();
    await pushImage(store, image);
    await pushImage(layout, image, 'teed');
    expect((await pullImage(store, image.digest)).layers[0]!.descriptor.digest).toBe(image.layer.digest);
    expect((await pullImage(layout, image.digest)).layers[0]!.descriptor.digest).toBe(image.layer.digest);
    expect((await readdir(join(tmp, 'teed-layout', 'blobs', 'sha256'))).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('keeps the layer when one of two streamed uploads fails, so the push to that store still works', async () => {
    const store = new RegistryStore(`${proxy.host}/half`, { credentials: { username: 'ci', password: 'secret' }, retry: { baseDelayMs: 10 } });
    const layout = new OciLayoutStore(join(tmp, 'half-layout'));
    proxy.setFault({ status: 500, count: 1, match: /\/half\/blobs\/uploads\/.+/ });
    const image = await buildImage({ contextDir: context, spec, source, epoch, uploadTo: [store, layout] });
    expect(image.blobs[1]!.bytes).toBeDefined();
    expect(await layout.hasBlob(image.layer.digest)).toBe(true);
    expect(await store.hasBlob(image.layer.digest)).toBe(false);
    await pushImage(store, image);
    expect((await pullImage(store, image.digest)).layers[0]!.descriptor.digest).toBe(image.layer.digest);
  });

  it('makes the layer while the upload session opens; a store whose session is refused gets the layer the ordinary way', async () => {
    const store = new RegistryStore(`${proxy.host}/nosession`, { credentials: { username: 'ci', password: 'secret' }, retry: { baseDelayMs: 10 } });
    const layout = new OciLayoutStore(join(tmp, 'nosession-layout'));
    proxy.setFault({ status: 403, count: 1, match: /\/nosession\/blobs\/uploads\/$/ });
    const before = proxy.log.length;
    const image = await buildImage({ contextDir: context, spec, source, epoch, uploadTo: [store, layout] });
    // The refused session: no PATCH went to the registry; the layer was made again and kept for the push.
    expect(proxy.log.slice(before).filter((r) => r.method === 'PATCH')).toEqual([]);
    expect(image.blobs[1]!.bytes).toBeDefined();
    expect(await layout.hasBlob(image.layer.digest)).toBe(true);
    await pushImage(store, image);
    await pushImage(layout, image, 'nosession');
    expect((await pullImage(store, image.digest)).layers[0]!.descriptor.digest).toBe(image.layer.digest);
    expect(image.digest).toBe((await buildImage({ contextDir: context, spec, source, epoch })).digest);
  });

  it('falls back to the ordinary upload when the streamed one fails, and the image is the same', async () => {
    const store = new RegistryStore(`${proxy.host}/fallback`, { credentials: { username: 'ci', password: 'secret' }, retry: { baseDelayMs: 10 } });
    proxy.setFault({ status: 500, count: 1, match: /\/fallback\/blobs\/uploads\/.+/ });
    const before = proxy.log.length;
    const image = await buildImage({ contextDir: context, spec, source, epoch, uploadTo: store });
    // The layer's PATCH failed; the config's single PUT went through (it is uploaded while the layer finishes).
    expect(layerRequests(before).map((r) => `${r.method} ${r.status}`).sort()).toEqual(['PATCH 500', 'PUT 201']);
    expect(await store.hasBlob(image.layer.digest)).toBe(false);

    await pushImage(store, image);
    expect(await store.hasBlob(image.layer.digest)).toBe(true);
    const plain = await buildImage({ contextDir: context, spec, source, epoch });
    expect(image.digest).toBe(plain.digest);
    await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/fallback@${image.digest}`]);
  });
});
