/** A cache hit reuses the attestation the first build attached, only when a new signature would repeat it. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attestAfterPush, findReusableAttestation, signStatement } from '../../../builder/sign/index.js';
import { buildProvenance, describeBuild, type BuildFacts } from '../../../builder/provenance/index.js';
import { attachAttestation } from '../../../lib/attest/index.js';
import { openImageStore, pushImage, type ImageStore } from '../../../lib/oci/index.js';
import { smallImage } from '../../support/images.js';
import { COMMIT, SOURCE_REPO, makeKey } from '../../lib/provenance/fixtures.js';

const release = makeKey('release');
const other = makeKey('other');
let dir: string;
let store: ImageStore;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-reuse-'));
  store = openImageStore(`oci:${join(dir, 'web')}`);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function facts(digest: string, over: Partial<BuildFacts> = {}): BuildFacts {
  return {
    repository: store.repository,
    digest,
    cached: false,
    source: { url: SOURCE_REPO, commit: COMMIT, branch: 'main' },
    pipeline: { file: '.slipway/pipeline.yaml' },
    builder: { id: 'https://slipway.dev/builder/v1', version: '0.1.0' },
    startedAt: '2026-11-23T10:00:00.000Z',
    finishedAt: '2026-11-23T10:00:42.000Z',
    ...over,
  };
}

async function image(body: string): Promise<string> {
  return pushImage(store, await smallImage([{ name: 'a', body }]));
}

describe('reusing the attestation of a cache hit', () => {
  describe('when the first build signed the image with the same key', () => {
    let digest: string;
    beforeAll(async () => {
      digest = await image('signed once\n');
      await attestAfterPush({ mode: 'key', key: release })(facts(digest), { store });
    });

    it('finds it for the hit (which records fromCache: true, as a new signature would)', async () => {
      expect(await findReusableAttestation(store, facts(digest, { cached: true }), release.publicKeyPem)).toEqual({ origin: expect.stringMatching(/^referrer sha256:[a-f0-9]{64}$/) });
    });

    it('does not take it for another key', async () => {
      expect(await findReusableAttestation(store, facts(digest, { cached: true }), other.publicKeyPem)).toBeUndefined();
    });

    it('does not take it when a new signature would name another branch or another builder', async () => {
      expect(await findReusableAttestation(store, facts(digest, { source: { url: SOURCE_REPO, commit: COMMIT, branch: 'release/1' } }), release.publicKeyPem)).toBeUndefined();
      expect(await findReusableAttestation(store, facts(digest, { source: { url: SOURCE_REPO, commit: COMMIT } }), release.publicKeyPem)).toBeUndefined();
      expect(await findReusableAttestation(store, facts(digest, { builder: { id: 'https://ci.example/other', version: '1' } }), release.publicKeyPem)).toBeUndefined();
    });
  });

  it('finds nothing for an image without attestations', async () => {
    expect(await findReusableAttestation(store, facts(await image('never signed\n')), release.publicKeyPem)).toBeUndefined();
  });

  it('does not take an attestation about another image, even by the same key', async () => {
    const digest = await image('borrowed\n');
    const elsewhere = await image('the signed one\n');
    // A statement about `elsewhere`, attached to `digest`: the signature is good, the subject is not this image.
    const signed = await signStatement(buildProvenance(describeBuild(facts(elsewhere))), { mode: 'key', key: release });
    await attachAttestation({ store, digest, bundle: signed.bundle, predicateType: signed.predicateType, created: new Date(0) });
    expect(await findReusableAttestation(store, facts(digest), release.publicKeyPem)).toBeUndefined();
  });

  it('does not take an attestation whose payload was changed after signing', async () => {
    const digest = await image('tampered\n');
    const signed = await signStatement(buildProvenance(describeBuild(facts(digest))), { mode: 'key', key: release });
    const statement = JSON.parse(Buffer.from(signed.envelope.payload, 'base64').toString('utf8'));
    statement.predicate.runDetails.metadata.finishedOn = '2030-01-01T00:00:00.000Z';
    const payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    const bundle = { ...signed.bundle, dsseEnvelope: { ...signed.bundle.dsseEnvelope!, payload } } as typeof signed.bundle;
    await attachAttestation({ store, digest, bundle, predicateType: signed.predicateType, created: new Date(0) });
    expect(await findReusableAttestation(store, facts(digest), release.publicKeyPem)).toBeUndefined();
  });
});
