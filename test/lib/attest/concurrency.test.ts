/** Several builders attaching to one image at once: no attestation is lost from `.att` or the referrers index. */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { attestationTag, fetchAttestations, referrersTag } from '../../../lib/attest/index.js';
import { openImageStore, pushImage, type ImageStore } from '../../../lib/oci/index.js';
import { buildProvenance } from '../../../builder/provenance/index.js';
import { signAndAttach } from '../../../builder/sign/index.js';
import { smallImage } from '../../support/images.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { description, makeKey } from '../provenance/fixtures.js';

const execFileAsync = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../../..');
const key = makeKey('release');
let registry: TestRegistry;
let work: string;

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'slipway-attach-concurrency-'));
}, 30_000);
afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function counts(store: ImageStore, digest: string): Promise<{ att: number; referrers: number }> {
  const att = JSON.parse((await store.getManifest(attestationTag(digest)))!.bytes.toString('utf8')).layers.length as number;
  const listed = await store.referrers(digest);
  const referrers = listed ? listed.length : (JSON.parse((await store.getManifest(referrersTag(digest)))!.bytes.toString('utf8')).manifests.length as number);
  return { att, referrers };
}

describe.each([
  ['the registry', () => openImageStore(`${registry.host}/acme/web`)],
  ['an OCI layout', () => openImageStore(`oci:${join(work, 'layout')}`)],
])('attaching concurrently in one process to %s', (_name, open) => {
  it('keeps every attestation', async () => {
    const store = open();
    const digest = await pushImage(store, await smallImage([{ name: 'a', body: 'same image\n' }]));
    await Promise.all(
      Array.from({ length: 6 }, (_, i) => signAndAttach({ store, digest, key, statement: buildProvenance(description(digest, { builderVersion: `0.1.${i}` })) })),
    );
    expect(await counts(store, digest)).toEqual({ att: 6, referrers: 6 });
    const fetched = await fetchAttestations(store, digest);
    expect(fetched.problems).toEqual([]);
    expect(fetched.attestations).toHaveLength(6);
  }, 30_000);
});

describe('attaching from three processes to one OCI layout', () => {
  it('keeps every attestation (the layout lock file serializes them)', async () => {
    const dir = join(work, 'shared-layout');
    const store = openImageStore(`oci:${dir}`);
    const digest = await pushImage(store, await smallImage([{ name: 'a', body: 'shared\n' }]));
    const keyFile = join(work, 'key.json');
    await writeFile(keyFile, JSON.stringify(key));
    const worker = join(ROOT, 'test/lib/attest/attach-worker.ts');
    const barrier = await mkdtemp(join(work, 'barrier-'));
    const runs = [0, 1, 2].map(() =>
      execFileAsync(process.execPath, ['--import', 'tsx', worker, store.repository, digest, keyFile, '4', barrier], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } }),
    );
    while ((await readdir(barrier)).length < 3) await new Promise((r) => setTimeout(r, 20));
    await writeFile(join(barrier, 'go'), '');
    await Promise.all(runs);
    expect(await counts(store, digest)).toEqual({ att: 12, referrers: 12 });
  }, 60_000);
});
