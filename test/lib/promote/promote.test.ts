import { LocalGitProvider, type Verifier } from '../../../lib/gitprovider/index.js';
import { landBuild, promote, repoStateReader, type PromotionDeps } from '../../../lib/promote/index.js';
import type { VerificationResult } from '../../../lib/provenance/types.js';
import { digestOf, makeEnvRepo, OLD_DIGEST, type TestRepo } from '../../support/promotion-repo.js';

const BUILT = digestOf('be');
const SOURCE = { repo: 'https://git.example/shop/web', ref: 'refs/heads/main', commit: 'c'.repeat(40) };
const clock = () => new Date('2026-11-23T10:00:00Z');

/** Verifies exactly the digests listed as signed; anything else has no attestation. */
function signedOnly(...digests: string[]): Verifier {
  return async (req): Promise<VerificationResult> =>
    digests.includes(req.digest)
      ? { ok: true, provenance: { digest: req.digest, builderId: 'https://slipway.dev/builder/local', sourceRepo: SOURCE.repo, sourceRef: SOURCE.ref, sourceCommit: SOURCE.commit, keyName: 'builder' } }
      : { ok: false, code: 'NO_ATTESTATION', message: `no attestation for ${req.digest}` };
}

function deps(r: TestRepo, verify: Verifier): PromotionDeps {
  const provider = new LocalGitProvider({ repo: r.repo, verify, clock });
  return { provider, reader: repoStateReader(provider.repo), verify, clock };
}

const build = { service: 'web', repository: 'localhost:5000/web', digest: BUILT, source: SOURCE };

describe('promotion', () => {
  let r: TestRepo;
  afterEach(() => r.cleanup());

  describe('a build from main', () => {
    it('is merged into the first environment when it allows auto-merge and the provenance verifies', async () => {
      r = makeEnvRepo({ bare: true, stagingAutoMerge: true });
      const landing = await landBuild(deps(r, signedOnly(BUILT)), build, 'slipway-builder');
      expect(landing).toMatchObject({ outcome: 'merged', environment: 'staging' });
      expect(r.git(['show', 'main:staging/services/web.yaml'], r.repo)).toContain(`digest: ${BUILT}`);
      expect(r.git(['show', 'main:production/services/web.yaml'], r.repo)).toContain(`digest: ${OLD_DIGEST}`);
      expect(r.git(['log', '-1', '--format=%(trailers:key=Slipway-Source-Commit,valueonly)', 'main'], r.repo)).toBe(SOURCE.commit);
      expect(r.git(['log', '-1', '--format=%(trailers:key=Slipway-Provenance,valueonly)', 'main'], r.repo)).toBe(`localhost:5000/web:sha256-${'be'.repeat(32)}.att`);
    });

    it('stays an open proposal when the provenance does not verify', async () => {
      r = makeEnvRepo({ bare: true, stagingAutoMerge: true });
      const landing = await landBuild(deps(r, signedOnly()), build, 'slipway-builder');
      expect(landing).toMatchObject({ outcome: 'proposed', held: { code: 'NOT_VERIFIED' } });
      expect(r.git(['show', 'main:staging/services/web.yaml'], r.repo)).toContain(`digest: ${OLD_DIGEST}`);
    });

    it('stays an open proposal when the first environment does not auto-merge', async () => {
      r = makeEnvRepo({ bare: true, stagingAutoMerge: false });
      const landing = await landBuild(deps(r, signedOnly(BUILT)), build, 'slipway-builder');
      expect(landing).toMatchObject({ outcome: 'proposed', proposal: { state: 'open' } });
      expect(landing).not.toHaveProperty('held');
    });

    it('reports already-updated when the same build lands twice', async () => {
      r = makeEnvRepo({ bare: true });
      const d = deps(r, signedOnly(BUILT));
      await landBuild(d, build, 'slipway-builder');
      expect(await landBuild(d, build, 'slipway-builder')).toMatchObject({ outcome: 'already-updated' });
    });
  });

  it('skips a build from a branch that is not deployable', async () => {
    r = makeEnvRepo({ bare: true });
    const landing = await landBuild(deps(r, signedOnly(BUILT)), { ...build, source: { ...SOURCE, ref: 'refs/heads/feature/x' } }, 'slipway-builder');
    expect(landing).toEqual({ outcome: 'skipped', reason: 'branch feature/x is not deployable (slipway.yaml deployableBranches: main)' });
    expect(r.git(['branch', '--list', 'slipway/*'], r.repo)).toBe('');
  });

  describe('slipway promote web --from staging --to production', () => {
    it('proposes the digest main runs in staging, with its verified source', async () => {
      r = makeEnvRepo({ bare: true });
      const d = deps(r, signedOnly(BUILT));
      await landBuild(d, build, 'slipway-builder');
      const landing = await promote(d, { service: 'web', from: 'staging', to: 'production', actor: 'Robin <robin@example.com>' });
      expect(landing).toMatchObject({ outcome: 'proposed', environment: 'production', proposal: { state: 'open', digest: BUILT, author: 'Robin' } });
      const branch = landing.proposal.branch;
      expect(r.git(['show', `${branch}:production/services/web.yaml`], r.repo)).toContain(`digest: ${BUILT}`);
      expect(r.git(['log', '-1', '--format=%(trailers:key=Slipway-Source-Commit,valueonly)', branch], r.repo)).toBe(SOURCE.commit);
      expect(r.git(['log', '-1', '--format=%b', branch], r.repo)).toMatch(/^Promoted from staging \(main at [0-9a-f]{12}\)\./);
    });

    it('refuses a digest that does not verify', async () => {
      r = makeEnvRepo({ bare: true });
      await expect(promote(deps(r, signedOnly()), { service: 'web', from: 'staging', to: 'production', actor: 'robin' })).rejects.toMatchObject({
        code: 'NOT_VERIFIED',
        message: expect.stringContaining('NO_ATTESTATION'),
      });
      expect(r.git(['branch', '--list', 'slipway/*'], r.repo)).toBe('');
    });

    it('refuses a quarantined digest', async () => {
      r = makeEnvRepo({
        bare: true,
        quarantine: `apiVersion: slipway.dev/v1\nkind: Quarantine\nspec:\n  digests:\n    - digest: ${OLD_DIGEST}\n      reason: leaked memory in production\n`,
      });
      await expect(promote(deps(r, signedOnly(OLD_DIGEST)), { service: 'web', from: 'staging', to: 'production', actor: 'robin' })).rejects.toMatchObject({
        code: 'QUARANTINED',
        message: expect.stringContaining('leaked memory in production'),
      });
    });

    it('refuses to promote backwards or to an unknown environment', async () => {
      r = makeEnvRepo({ bare: true });
      const d = deps(r, signedOnly(OLD_DIGEST));
      await expect(promote(d, { service: 'web', from: 'production', to: 'staging', actor: 'robin' })).rejects.toMatchObject({ code: 'WRONG_DIRECTION' });
      await expect(promote(d, { service: 'web', from: 'staging', to: 'qa', actor: 'robin' })).rejects.toMatchObject({ code: 'UNKNOWN_ENVIRONMENT' });
      await expect(promote(d, { service: 'nope', from: 'staging', to: 'production', actor: 'robin' })).rejects.toMatchObject({ code: 'SERVICE_NOT_FOUND' });
    });
  });
});
