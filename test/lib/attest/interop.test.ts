/**
 * What we attach is readable without Slipway: skopeo reads the cosign `.att` manifest and the referrers
 * index from the real registry and the OCI layout, copies the DSSE layer out, and openssl verifies the
 * envelope's signature over the DSSE pre-authentication encoding with the PEM public key.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openImageStore, pushImage, type ImageStore } from '../../../lib/oci/index.js';
import { buildProvenance } from '../../../builder/provenance/index.js';
import { signAndAttach } from '../../../builder/sign/index.js';
import { startRegistry, skopeo, type TestRegistry } from '../../support/registry.js';
import { smallImage } from '../../support/images.js';
import { description, makeKey } from '../provenance/fixtures.js';

const execFileAsync = promisify(execFile);
const key = makeKey('release');

let registry: TestRegistry;
let work: string;

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'slipway-attest-interop-'));
}, 30_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** DSSE v1 PAE: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII decimal bytes. */
function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

async function opensslVerifies(envelope: { payloadType: string; payload: string; signatures: { sig: string }[] }, publicKeyPem: string, dir: string): Promise<boolean> {
  await writeFile(join(dir, 'pae.bin'), pae(envelope.payloadType, Buffer.from(envelope.payload, 'base64')));
  await writeFile(join(dir, 'sig.der'), Buffer.from(envelope.signatures[0]!.sig, 'base64'));
  await writeFile(join(dir, 'key.pem'), publicKeyPem);
  try {
    const { stdout } = await execFileAsync('openssl', ['dgst', '-sha256', '-verify', 'key.pem', '-signature', 'sig.der', 'pae.bin'], { cwd: dir });
    return stdout.includes('Verified OK');
  } catch {
    return false;
  }
}

interface Opened {
  store: ImageStore;
  transport: (tag: string) => string;
  skopeoFlags: string[];
  /** A manifest by digest, read without Slipway's code. */
  rawManifest: (digest: string) => Promise<string>;
}

const cases: [string, () => Opened][] = [
  [
    'the distribution registry',
    () => ({
      store: openImageStore(`${registry.host}/acme/web`),
      transport: (ref) => `docker://${registry.host}/acme/web${ref.startsWith('sha256:') ? '@' : ':'}${ref}`,
      skopeoFlags: ['--tls-verify=false'],
      rawManifest: (d) => skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${registry.host}/acme/web@${d}`]),
    }),
  ],
  [
    'the OCI layout directory',
    () => {
      const dir = join(work, 'layout');
      return {
        store: openImageStore(`oci:${dir}`),
        transport: (ref) => `oci:${dir}:${ref}`,
        skopeoFlags: [],
        // skopeo's oci: transport names manifests by ref name only; the layout spec puts the blob here.
        rawManifest: (d) => readFile(join(dir, 'blobs', 'sha256', d.slice('sha256:'.length)), 'utf8'),
      };
    },
  ],
];

describe.each(cases)('attestations in %s, read by skopeo and checked by openssl', (name, open) => {
  let store: ImageStore;
  let transport: (ref: string) => string;
  let flags: string[];
  let rawManifest: (digest: string) => Promise<string>;
  let digest: string;
  let hex: string;

  beforeAll(async () => {
    ({ store, transport, skopeoFlags: flags, rawManifest } = open());
    digest = await pushImage(store, await smallImage([{ name: 'app.txt', body: `interop ${name}\n` }]));
    hex = digest.slice('sha256:'.length);
    const statement = buildProvenance(description(digest, { image: { name: store.repository, digest } }));
    await signAndAttach({ store, digest, statement, key });
  }, 30_000);

  it('skopeo inspect --raw reads the sha256-<hex>.att manifest with a DSSE layer and its predicateType', async () => {
    const raw = JSON.parse(await skopeo(['inspect', ...flags, '--raw', transport(`sha256-${hex}.att`)]));
    expect(raw.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(raw.layers).toEqual([
      expect.objectContaining({
        mediaType: 'application/vnd.dsse.envelope.v1+json',
        annotations: expect.objectContaining({ predicateType: 'https://slsa.dev/provenance/v1' }),
      }),
    ]);
  });

  it('the sigstore bundle referrer is listed and names the image as its subject', async () => {
    let referrerDigest: string;
    const listed = await store.referrers(digest);
    if (listed === undefined) {
      // No referrers API (distribution 2.8): the OCI tag schema's sha256-<hex> index lists it.
      const index = JSON.parse(await skopeo(['inspect', ...flags, '--raw', transport(`sha256-${hex}`)]));
      expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
      expect(index.manifests).toHaveLength(1);
      expect(index.manifests[0].artifactType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
      referrerDigest = index.manifests[0].digest;
    } else {
      expect(listed).toHaveLength(1);
      referrerDigest = listed[0]!.digest;
    }
    const referrer = JSON.parse(await rawManifest(referrerDigest));
    expect(referrer.artifactType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(referrer.subject).toEqual(expect.objectContaining({ digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' }));
  });

  it('the DSSE layer skopeo copies out verifies with openssl against the PEM public key, and not after a flipped byte', async () => {
    const out = await mkdtemp(join(work, 'copy-'));
    await skopeo(['copy', ...(flags.length ? ['--src-tls-verify=false'] : []), transport(`sha256-${hex}.att`), `dir:${out}`]);
    const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8'));
    const layerFile = join(out, manifest.layers[0].digest.slice('sha256:'.length));
    const envelope = JSON.parse(await readFile(layerFile, 'utf8'));
    expect(envelope.payloadType).toBe('application/vnd.in-toto+json');
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8'));
    expect(statement.subject[0].digest.sha256).toBe(hex);

    expect(await opensslVerifies(envelope, key.publicKeyPem, out)).toBe(true);
    const flipped = Buffer.from(envelope.payload, 'base64');
    flipped[20] = flipped[20]! ^ 0x01;
    expect(await opensslVerifies({ ...envelope, payload: flipped.toString('base64') }, key.publicKeyPem, out)).toBe(false);
    expect(await opensslVerifies(envelope, makeKey('other').publicKeyPem, out)).toBe(false);
  });
});
