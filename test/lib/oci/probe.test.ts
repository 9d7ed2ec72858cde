import { computeDigest, probeManifest, pushImage, RegistryStore } from '../../../lib/oci/index.js';
import { freePort, startAuthProxy, startRegistry, type AuthProxy, type TestRegistry } from '../../support/registry.js';
import { smallImage } from '../../support/images.js';

let registry: TestRegistry;
let proxy: AuthProxy;
let digest: string;

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await startAuthProxy(registry, { users: { ci: 'secret' } });
  const image = await smallImage([{ name: 'probe.txt', body: 'probe\n' }], 'probe');
  digest = await pushImage(new RegistryStore(`${registry.host}/probe`), image);
});
afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
});

describe('asking a registry whether it holds a manifest, with one HEAD', () => {
  it('answers present for a pushed manifest', async () => {
    expect(await probeManifest(`${registry.host}/probe`, digest)).toBe('present');
  });

  it('answers absent for a digest the repository does not have', async () => {
    expect(await probeManifest(`${registry.host}/probe`, computeDigest('nothing'))).toBe('absent');
    expect(await probeManifest(`${registry.host}/other`, digest)).toBe('absent');
  });

  it('answers unknown (take the long way) when the registry wants a token', async () => {
    expect(await probeManifest(`${proxy.host}/probe`, digest)).toBe('unknown');
    const head = proxy.log.filter((r) => r.method === 'HEAD');
    expect(head.at(-1)).toMatchObject({ status: 401 });
  });

  it('answers unknown when nothing listens', async () => {
    const port = await freePort();
    expect(await probeManifest(`127.0.0.1:${port}/probe`, digest, { timeoutMs: 5_000 })).toBe('unknown');
  });

  it('refuses a digest that is not one', async () => {
    await expect(probeManifest(`${registry.host}/probe`, 'sha256:abc')).rejects.toMatchObject({ code: 'INVALID_DIGEST' });
  });
});
