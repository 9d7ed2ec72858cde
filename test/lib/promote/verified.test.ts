/** Promotion with the real sigstore verifier of lib/provenance against images signed in an OCI layout. */
import { rmSync } from 'node:fs';
import { LocalGitProvider } from '../../../lib/gitprovider/index.js';
import { landBuild, promote, repoStateReader, type PromotionDeps } from '../../../lib/promote/index.js';
import { defaultVerifier, describeLanding, landAfterBuild } from '../../../lib/promote/index.js';
import { imageShelf, SHOP_SOURCE, type ImageShelf } from '../../support/promotion-images.js';
import { makeEnvRepo, type TestRepo } from '../../support/promotion-repo.js';

describe('promotion with signed provenance', () => {
  let shelf: ImageShelf;
  let signed: string;
  let unsigned: string;
  let r: TestRepo;
  let deps: PromotionDeps;

  beforeAll(async () => {
    shelf = imageShelf();
    signed = await shelf.signed('v2');
    unsigned = await shelf.unsigned('v3-unsigned');
  });
  beforeEach(() => {
    r = makeEnvRepo({ bare: true, publicKeyPem: shelf.publicKeyPem });
    const verify = defaultVerifier();
    const provider = new LocalGitProvider({ repo: r.repo, verify });
    deps = { provider, reader: repoStateReader(provider.repo), verify };
  });
  afterEach(() => r.cleanup());
  afterAll(() => rmSync(shelf.repository.slice('oci:'.length), { recursive: true, force: true }));

  it('lands a signed build in staging, then promotes and merges it into production', async () => {
    const landing = await landBuild(deps, { service: 'web', repository: shelf.repository, digest: signed, source: SHOP_SOURCE }, 'slipway-builder');
    expect(landing).toMatchObject({ outcome: 'merged', verification: { ok: true, provenance: { keyName: 'builder', sourceCommit: SHOP_SOURCE.commit } } });
    const promoted = await promote(deps, { service: 'web', from: 'staging', to: 'production', actor: 'Robin <robin@example.com>' });
    expect(promoted.outcome).toBe('proposed');
    const merged = await deps.provider.merge(promoted.proposal.id, { actor: 'Sam <sam@example.com>' });
    expect(r.git(['show', 'main:production/services/web.yaml'], r.repo)).toContain(`digest: ${signed}`);
    expect(r.git(['log', '-1', '--format=%(trailers:key=Slipway-Source-Commit,valueonly)', merged.mergeCommit], r.repo)).toBe(SHOP_SOURCE.commit);
  });

  it('lands a build after slipway build --envs <path>, and skips a build made on no branch', async () => {
    const built = { service: 'web', repository: shelf.repository, digest: signed, source: { url: SHOP_SOURCE.repo, commit: SHOP_SOURCE.commit, branch: 'main' } };
    const landing = await landAfterBuild(r.repo, built, { actor: 'builder-bot' });
    expect(describeLanding(landing)).toMatch(/^merged into staging: staging\/web-[0-9a-f]{12} \([0-9a-f]{12}\)$/);
    expect(r.git(['log', '-1', '--format=%an|%(trailers:key=Slipway-Source-Repo,valueonly)', `slipway/${landing.outcome === 'merged' ? landing.proposal.id : ''}`], r.repo)).toBe(`builder-bot|${SHOP_SOURCE.repo}`);
    const detached = await landAfterBuild(r.repo, { ...built, source: { ...built.source, branch: undefined } });
    expect(describeLanding(detached)).toBe('not proposed: the build is not on a branch (detached HEAD); only builds of deployable branches are proposed');
  });

  it('holds an unsigned build in an open proposal with the refusal code', async () => {
    const landing = await landBuild(deps, { service: 'web', repository: shelf.repository, digest: unsigned, source: SHOP_SOURCE }, 'slipway-builder');
    expect(landing).toMatchObject({ outcome: 'proposed', held: { code: 'NOT_VERIFIED', message: expect.stringMatching(/^NO_ATTESTATION/) } });
  });

  it('refuses to promote an unsigned digest a person merged into staging by hand', async () => {
    const landing = await landBuild(deps, { service: 'web', repository: shelf.repository, digest: unsigned, source: SHOP_SOURCE }, 'slipway-builder');
    if (landing.outcome === 'skipped') throw new Error('not proposed');
    r.git(['fetch', '-q', 'origin']);
    r.git(['merge', '-q', '--no-ff', '-m', 'merge it anyway', `origin/${landing.proposal.branch}`]);
    r.git(['push', '-q', 'origin', 'main']);
    await expect(promote(deps, { service: 'web', from: 'staging', to: 'production', actor: 'robin' })).rejects.toMatchObject({
      code: 'NOT_VERIFIED',
      message: expect.stringContaining('NO_ATTESTATION'),
    });
  });
});
