/** The build hook: what build() pushed gets provenance, a signature and an attachment the controller accepts. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attestAfterPush, signAndAttach, type SignAndAttachResult } from '../../../builder/sign/index.js';
import { buildProvenance, type BuildFacts } from '../../../builder/provenance/index.js';
import { openImageStore, pushImage, type ImageStore } from '../../../lib/oci/index.js';
import { createProvenanceVerifier } from '../../../lib/provenance/index.js';
import { smallImage } from '../../support/images.js';
import { COMMIT, SOURCE_REPO, description, makeKey, policyTrusting } from '../../lib/provenance/fixtures.js';

const key = makeKey('release');
const policy = policyTrusting([{ name: 'release' }]);
let dir: string;
let store: ImageStore;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-after-push-'));
  store = openImageStore(`oci:${join(dir, 'web')}`);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function factsFor(digest: string, branch?: string): BuildFacts {
  return {
    repository: store.repository,
    digest,
    cached: false,
    cacheKey: `sha256:${'f'.repeat(64)}`,
    source: { url: SOURCE_REPO, commit: COMMIT, ...(branch ? { branch } : {}) },
    pipeline: { file: '.slipway/pipeline.yaml', digest: `sha256:${'e'.repeat(64)}` },
    builder: { id: 'https://slipway.dev/builder/v1', version: '0.1.0' },
    startedAt: '2026-11-23T10:00:00.000Z',
    finishedAt: '2026-11-23T10:00:42.000Z',
  };
}

describe('attesting after build() pushed an image', () => {
  describe('for a build of the main branch', () => {
    let digest: string;
    let attached: SignAndAttachResult | undefined;
    beforeAll(async () => {
      digest = await pushImage(store, await smallImage([{ name: 'a', body: 'main\n' }]));
      await attestAfterPush({ mode: 'key', key }, (r) => (attached = r))(factsFor(digest, 'main'), { store });
    });

    it('records the build as the provenance: source, pipeline, builder, times, cache facts', () => {
      const statement = JSON.parse(Buffer.from(attached!.signed.envelope.payload, 'base64').toString('utf8'));
      expect(statement.predicate.buildDefinition.externalParameters).toEqual({
        source: { repo: SOURCE_REPO, ref: 'refs/heads/main', commit: COMMIT },
        pipeline: '.slipway/pipeline.yaml',
      });
      expect(statement.predicate.buildDefinition.internalParameters).toEqual({ pipelineDigest: `sha256:${'e'.repeat(64)}`, cacheKey: `sha256:${'f'.repeat(64)}`, fromCache: false });
      expect(statement.predicate.runDetails.metadata).toMatchObject({ startedOn: '2026-11-23T10:00:00.000Z', finishedOn: '2026-11-23T10:00:42.000Z' });
    });

    it('is accepted by the verifier the controller uses', async () => {
      const verifier = createProvenanceVerifier();
      const result = await verifier.verify({ repository: store.repository, digest, service: 'web', policy, publicKeys: { release: key.publicKeyPem } });
      expect(result).toMatchObject({ ok: true, provenance: { sourceRef: 'refs/heads/main', keyName: 'release' } });
      await verifier.verify({ repository: store.repository, digest, service: 'web', policy, publicKeys: { release: key.publicKeyPem } });
      expect(verifier.cache?.hits).toBe(1);
    });
  });

  it('records a detached commit as its own ref, which no branch rule allows', async () => {
    const digest = await pushImage(store, await smallImage([{ name: 'a', body: 'detached\n' }]));
    await attestAfterPush({ mode: 'key', key })(factsFor(digest), { store });
    const result = await createProvenanceVerifier().verify({ repository: store.repository, digest, service: 'web', policy, publicKeys: { release: key.publicKeyPem } });
    expect(result).toMatchObject({ ok: false, code: 'SOURCE_NOT_ALLOWED' });
  });

  it('refuses to sign provenance about another image than the one pushed', async () => {
    const digest = await pushImage(store, await smallImage([{ name: 'a', body: 'pushed\n' }]));
    const statement = buildProvenance(description(`sha256:${'0'.repeat(64)}`));
    await expect(signAndAttach({ store, digest, statement, key })).rejects.toMatchObject({ code: 'SUBJECT_MISMATCH' });
  });

  it('refuses to attach to an image that is not in the store', async () => {
    const missing = `sha256:${'1'.repeat(64)}`;
    await expect(signAndAttach({ store, digest: missing, statement: buildProvenance(description(missing)), key })).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
  });
});
