import { LocalGitProvider, type Verifier } from '../../../lib/gitprovider/index.js';
import { promotionHistory } from '../../../lib/promote/index.js';
import { digestOf, makeEnvRepo, OLD_DIGEST, type TestRepo } from '../../support/promotion-repo.js';

const V2 = digestOf('a2');
const V3 = digestOf('a3');
const SOURCE = { repo: 'https://git.example/shop/web', ref: 'refs/heads/main', commit: '2'.repeat(40) };
const verify: Verifier = async (req) => ({ ok: true, provenance: { digest: req.digest, builderId: 'b', sourceRepo: SOURCE.repo, sourceRef: SOURCE.ref, sourceCommit: SOURCE.commit, keyName: 'builder' } });

describe('promotion history from git alone', () => {
  let r: TestRepo;
  afterAll(() => r.cleanup());

  it('reports Slipway merges, a person\'s git merge, a git revert and the first commit, newest first, with who, digest and source', async () => {
    r = makeEnvRepo({ bare: true, productionApprovals: 1 });
    let minute = 0;
    const clock = () => new Date(Date.UTC(2026, 10, 23, 10, minute++));
    const provider = new LocalGitProvider({ repo: r.repo, verify, clock });
    const change = { service: 'web', repository: 'localhost:5000/web', source: SOURCE, author: { name: 'builder-bot', email: 'bot@example.com' } };

    const toProduction = await provider.propose({ ...change, environment: 'production', digest: V2 });
    await provider.approve(toProduction.id, 'Alice <alice@example.com>');
    await provider.merge(toProduction.id, { actor: 'Robin <robin@example.com>' });

    const toStaging = await provider.propose({ ...change, environment: 'staging', digest: V3 });
    r.git(['pull', '-q', '--ff-only']);
    r.git(['merge', '-q', '--no-ff', '-m', 'merge staging bump by hand', `origin/${toStaging.branch}`]);
    r.git(['revert', '--no-edit', 'HEAD', '-m', '1']);
    r.git(['push', '-q', 'origin', 'main']);

    const main = r.git(['rev-parse', 'main'], r.repo);
    const entries = await promotionHistory(provider.repo, main, { environments: ['staging', 'production'], service: 'web' });
    expect(entries.map((e) => [e.environment, e.kind, e.digest, e.previousDigest, e.by])).toEqual([
      ['staging', 'rollback', OLD_DIGEST, V3, 'Pat Person'],
      ['staging', 'promotion', V3, OLD_DIGEST, 'Pat Person'],
      ['production', 'promotion', V2, OLD_DIGEST, 'Robin'],
      ['staging', 'created', OLD_DIGEST, undefined, 'Pat Person'],
      ['production', 'created', OLD_DIGEST, undefined, 'Pat Person'],
    ]);
    expect(entries[0]!.rollback).toMatch(/^Revert "merge staging bump by hand"/);
    expect(entries[1]).toMatchObject({ proposedBy: 'builder-bot', sourceCommit: SOURCE.commit, sourceRepo: SOURCE.repo });
    expect(entries[2]).toMatchObject({ proposedBy: 'builder-bot', approvedBy: ['Alice'], sourceCommit: SOURCE.commit });
  });
});
