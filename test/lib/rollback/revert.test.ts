/** Rollback commits on real repositories, checked with the git CLI and compared with what `git revert` makes. */
import fs from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createLocalRollback, isRollbackCommit, quarantinedDigests } from '../../../lib/rollback/index.js';
import type { RevertRequest } from '../../../lib/gitprovider/types.js';
import { validateFile } from '../../../schemas/index.js';
import { DIGEST, serviceYaml, standardHistory, TestRepo } from './repo.js';

const now = () => new Date('2026-03-01T12:00:00Z');

function request(extra: Partial<RevertRequest> = {}): RevertRequest {
  return {
    environment: 'staging',
    service: 'checkout',
    badDigest: DIGEST.b,
    reason: 'canary analysis breach: 2 consecutive failed intervals',
    summary: 'fail: errorRate: canary error rate 4.10% vs baseline 0.50% (8.20x, z-test p=1.2e-9)',
    actor: 'slipway-controller',
    quarantine: true,
    ...extra,
  };
}

let repos: TestRepo[] = [];
function newRepo(): TestRepo {
  const r = new TestRepo();
  repos.push(r);
  return r;
}
afterEach(() => {
  for (const r of repos) r.cleanup();
  repos = [];
});

/** Tree of `git revert --no-edit [-m 1] <sha>` run by the git CLI in a clone, or undefined when git cannot revert cleanly. */
function gitRevertTree(repo: TestRepo, sha: string, mainline = false): string | undefined {
  const clone = repo.clone();
  try {
    repo.gitIn(clone, 'revert', '--no-edit', ...(mainline ? ['-m', '1'] : []), sha);
  } catch {
    return undefined;
  }
  return repo.head('HEAD^{tree}', clone);
}

describe('rollback by revert commit', () => {
  describe('when later unrelated commits touched other files', () => {
    it('reverts only the change that introduced the digest, exactly as git revert does', async () => {
      const repo = newRepo();
      const { bump, later } = standardHistory(repo);
      const expected = gitRevertTree(repo, bump);
      expect(expected).toBeDefined();
      const result = await createLocalRollback({ fs, dir: repo.dir, now }).revert(request({ quarantine: false }));

      expect(result).toMatchObject({ revertedCommit: bump, restoredDigest: DIGEST.a, explicit: false, alreadyRolledBack: false, attempts: 1 });
      expect(repo.head()).toBe(result.commit);
      expect(repo.git('log', '-1', '--format=%P', result.commit).trim()).toBe(later);
      expect(repo.head(`${result.commit}^{tree}`)).toBe(expected);
      expect(repo.git('show', `${result.commit}:staging/services/cart.yaml`)).toContain(DIGEST.d);
      expect(repo.git('show', '--stat', '--format=', result.commit).trim()).toMatch(/^staging\/services\/checkout\.yaml \| 2 \+-/);
    });

    it('writes git revert\'s message with the reason, the failed SLO, the numbers and the trailers', async () => {
      const repo = newRepo();
      const { bump } = standardHistory(repo);
      const { commit } = await createLocalRollback({ fs, dir: repo.dir, now }).revert(request());
      const message = repo.git('log', '-1', '--format=%B', commit);
      expect(message.split('\n')[0]).toBe(`Revert "Promote checkout to ${DIGEST.b.slice(0, 19)}"`);
      expect(message).toContain(`This reverts commit ${bump}.`);
      expect(message).toContain('canary analysis breach: 2 consecutive failed intervals');
      expect(message).toContain('errorRate: canary error rate 4.10% vs baseline 0.50% (8.20x, z-test p=1.2e-9)');
      const trailer = (key: string) => repo.git('log', '-1', `--format=%(trailers:key=${key},valueonly)`, commit).trim();
      expect(trailer('Slipway-Reverts')).toBe(bump);
      expect(trailer('Slipway-Rollback')).toBe('staging/checkout by slipway-controller');
      expect(trailer('Slipway-Bad-Digest')).toBe(DIGEST.b);
      expect(trailer('Slipway-Restored-Digest')).toBe(DIGEST.a);
      expect(repo.git('log', '-1', '--format=%an <%ae> %aI', commit).trim()).toBe('Slipway <slipway@localhost> 2026-03-01T12:00:00+00:00');
      repo.git('fsck', '--no-dangling', '--strict');
    });

    it('works the same on a bare repository', async () => {
      const repo = newRepo();
      const { bump } = standardHistory(repo);
      const bare = join(repo.root, 'bare.git');
      execFileSync('git', ['clone', '-q', '--bare', repo.dir, bare]);
      const result = await createLocalRollback({ fs, gitdir: bare, now }).revert(request({ quarantine: false }));
      expect(repo.gitIn(bare, 'rev-parse', `${result.commit}^{tree}`).trim()).toBe(gitRevertTree(repo, bump));
      expect(repo.gitIn(bare, 'rev-parse', 'main').trim()).toBe(result.commit);
    });
  });

  describe('when a later commit changed the same file elsewhere', () => {
    it('keeps that change and reverts the digest, like git revert', async () => {
      const repo = newRepo();
      const { bump } = standardHistory(repo);
      // The port is two lines below the digest: git's merge keeps both changes.
      repo.commit('Move checkout to port 9090', { 'staging/services/checkout.yaml': serviceYaml('checkout', DIGEST.b).replace('port: 8080', 'port: 9090') });
      const expected = gitRevertTree(repo, bump);
      expect(expected).toBeDefined();
      const result = await createLocalRollback({ fs, dir: repo.dir, now }).revert(request({ quarantine: false }));
      expect(result.explicit).toBe(false);
      expect(repo.head(`${result.commit}^{tree}`)).toBe(expected);
      expect(repo.read('staging/services/checkout.yaml')).toBe(serviceYaml('checkout', DIGEST.a).replace('port: 8080', 'port: 9090'));
    });
  });

  describe('when the change cannot be reverted cleanly', () => {
    it('writes the previous digest back explicitly, keeping the later change and every comment', async () => {
      const repo = newRepo();
      const { bump } = standardHistory(repo);
      // The line right after the digest changed: git revert conflicts.
      repo.commit('Scale checkout', { 'staging/services/checkout.yaml': serviceYaml('checkout', DIGEST.b, { replicas: 3 }) });
      expect(gitRevertTree(repo, bump)).toBeUndefined();

      const result = await createLocalRollback({ fs, dir: repo.dir, now }).revert(request({ quarantine: false }));
      expect(result).toMatchObject({ explicit: true, restoredDigest: DIGEST.a, revertedCommit: bump });
      expect(repo.git('show', `${result.commit}:staging/services/checkout.yaml`)).toBe(serviceYaml('checkout', DIGEST.a, { replicas: 3 }));
      expect(repo.git('log', '-1', '--format=%B', result.commit)).toMatch(/did not revert cleanly \(later changes conflict with it in staging\/services\/checkout\.yaml\), so the previous digest was written back explicitly/);
      expect(repo.git('log', '-1', '--format=%(trailers:key=Slipway-Reverts,valueonly)', result.commit).trim()).toBe(bump);
    });

    it('touches only this service when the introducing commit changed other services too', async () => {
      const repo = newRepo();
      repo.commit('Add services', { 'staging/services/checkout.yaml': serviceYaml('checkout', DIGEST.a), 'staging/services/cart.yaml': serviceYaml('cart', DIGEST.c) });
      const both = repo.commit('Promote checkout and cart', { 'staging/services/checkout.yaml': serviceYaml('checkout', DIGEST.b), 'staging/services/cart.yaml': serviceYaml('cart', DIGEST.d) });
      const result = await createLocalRollback({ fs, dir: repo.dir, now }).revert(request({ quarantine: false }));
      expect(result).toMatchObject({ explicit: true, revertedCommit: both });
      expect(repo.git('show', `${result.commit}:staging/services/cart.yaml`)).toContain(DIGEST.d);
      expect(repo.git('show', `${result.commit}:staging/services/checkout.yaml`)).toContain(DIGEST.a);
      expect(repo.git('log', '-1', '--format=%B', result.commit)).toContain('also changed staging/services/cart.yaml');
    });
  });

  describe('when the digest came in by a merged pull request', () => {
    it('reverts the merge against its first parent, like git revert -m 1', async () => {
      const repo = newRepo();
      standardHistory(repo);
      repo.git('checkout', '-q', '-b', 'promote/checkout');
      repo.commit('Promote checkout to D', { 'staging/services/checkout.yaml': serviceYaml('checkout', DIGEST.d) });
      repo.git('checkout', '-q', 'main');
      repo.commit('Unrelated env tweak', { 'staging/environment.yaml': 'apiVersion: slipway.dev/v1\nkind: Environment\nmetadata:\n  name: staging\nspec:\n  target:\n    type: local\n  autoMerge: true\n' });
      repo.git('merge', '-q', '--no-ff', '-m', 'Merge pull request #7 from promote/checkout', 'promote/checkout');
      const merge = repo.head();
      const expected = gitRevertTree(repo, merge, true);
      const result = await createLocalRollback({ fs, dir: repo.dir, now }).revert(request({ badDigest: DIGEST.d, quarantine: false }));
      expect(result).toMatchObject({ revertedCommit: merge, restoredDigest: DIGEST.b, explicit: false });
      expect(repo.head(`${result.commit}^{tree}`)).toBe(expected);
    });
  });

  describe('quarantine', () => {
    it('adds the digest to quarantine.yaml in the same commit, valid by its schema', async () => {
      const repo = newRepo();
      standardHistory(repo);
      const result = await createLocalRollback({ fs, dir: repo.dir, now }).revert(request());
      expect(result.quarantined).toBe(true);
      expect(repo.git('show', '--name-only', '--format=', result.commit).trim().split('\n').sort()).toEqual(['quarantine.yaml', 'staging/services/checkout.yaml']);
      const text = repo.git('show', `${result.commit}:quarantine.yaml`);
      const parsed = validateFile('Quarantine', text, 'quarantine.yaml');
      expect(parsed.ok).toBe(true);
      if (parsed.ok) {
        expect(parsed.value.spec.digests).toEqual([
          { digest: DIGEST.b, service: 'checkout', environment: 'staging', reason: 'canary analysis breach: 2 consecutive failed intervals', at: '2026-03-01T12:00:00.000Z' },
        ]);
      }
    });

    it('appends to an existing file and keeps its comments', async () => {
      const repo = newRepo();
      repo.commit('Quarantine an old build', {
        'quarantine.yaml': `# reviewed by the platform team\napiVersion: slipway.dev/v1\nkind: Quarantine\nspec:\n  digests:\n    # leaked credentials in this build\n    - digest: ${DIGEST.c}\n      reason: leaked credentials\n`,
      });
      standardHistory(repo);
      const result = await createLocalRollback({ fs, dir: repo.dir, now }).revert(request());
      const text = repo.git('show', `${result.commit}:quarantine.yaml`);
      expect(text).toContain('# reviewed by the platform team');
      expect(text).toContain('# leaked credentials in this build');
      expect(quarantinedDigests(text)).toEqual([DIGEST.c, DIGEST.b]);
      expect(validateFile('Quarantine', text, 'quarantine.yaml').ok).toBe(true);
    });
  });

  describe('when main moves while the rollback is being made', () => {
    it('builds the revert again on the new tip and never forces main', async () => {
      const repo = newRepo();
      const { bump } = standardHistory(repo);
      let concurrent = '';
      const rollback = createLocalRollback({
        fs,
        dir: repo.dir,
        now,
        beforePublish: async (_commit, attempt) => {
          if (attempt === 1) concurrent = repo.commit('Someone else promotes cart', { 'staging/services/cart.yaml': serviceYaml('cart', DIGEST.a) });
        },
      });
      const result = await rollback.revert(request());
      expect(result.attempts).toBe(2);
      expect(repo.git('log', '-1', '--format=%P', result.commit).trim()).toBe(concurrent);
      expect(repo.git('show', `${result.commit}:staging/services/cart.yaml`)).toContain(DIGEST.a);
      expect(repo.git('show', `${result.commit}:staging/services/checkout.yaml`)).toContain(DIGEST.a);
      expect(repo.git('log', '--format=%(trailers:key=Slipway-Reverts,valueonly)', 'main').trim()).toBe(bump);
      expect(repo.git('status', '--porcelain')).toBe('');
    });

    it('gives up with a waiting error when main never holds still, leaving main as the others left it', async () => {
      const repo = newRepo();
      standardHistory(repo);
      let n = 0;
      const rollback = createLocalRollback({
        fs,
        dir: repo.dir,
        now,
        attempts: 3,
        beforePublish: async () => {
          repo.commit(`busy ${n++}`, { 'staging/services/cart.yaml': serviceYaml('cart', DIGEST.a, { replicas: n + 2 }) });
        },
      });
      await expect(rollback.revert(request())).rejects.toMatchObject({ code: 'BRANCH_MOVED', kind: 'waiting' });
      expect(repo.git('log', '-1', '--format=%s').trim()).toBe('busy 2');
    });
  });

  describe('the working tree of a checked-out main', () => {
    it('is updated so git status stays clean', async () => {
      const repo = newRepo();
      standardHistory(repo);
      await createLocalRollback({ fs, dir: repo.dir, now }).revert(request());
      expect(repo.git('status', '--porcelain')).toBe('');
      expect(repo.read('staging/services/checkout.yaml')).toContain(DIGEST.a);
      expect(repo.read('quarantine.yaml')).toContain(DIGEST.b);
    });

    it('with local changes to the service file: refuses, like git revert, and writes nothing', async () => {
      const repo = newRepo();
      standardHistory(repo);
      const before = repo.head();
      repo.write('staging/services/checkout.yaml', serviceYaml('checkout', DIGEST.b) + '# my edit\n');
      await expect(createLocalRollback({ fs, dir: repo.dir, now }).revert(request())).rejects.toMatchObject({
        code: 'LOCAL_CHANGES',
        message: expect.stringContaining('staging/services/checkout.yaml'),
      });
      expect(repo.head()).toBe(before);
      expect(repo.read('staging/services/checkout.yaml')).toContain('# my edit');
    });
  });

  describe('when there is nothing to roll back', () => {
    it('a second rollback of the same digest reports it as already rolled back and commits nothing', async () => {
      const repo = newRepo();
      const { bump } = standardHistory(repo);
      const rollback = createLocalRollback({ fs, dir: repo.dir, now });
      const first = await rollback.revert(request());
      const second = await rollback.revert(request());
      expect(second).toMatchObject({ alreadyRolledBack: true, commit: first.commit, revertedCommit: bump, restoredDigest: DIGEST.a });
      expect(repo.head()).toBe(first.commit);
    });

    it.each([
      ['a digest that never ran', { badDigest: DIGEST.d }, 'NOT_DEPLOYED'],
      ['a service that does not exist', { service: 'ghost' }, 'NO_SERVICE'],
      ['a tag instead of a digest', { badDigest: 'latest' }, 'BAD_DIGEST'],
    ])('%s is refused with a clear error', async (_name, extra, code) => {
      const repo = newRepo();
      standardHistory(repo);
      const before = repo.head();
      await expect(createLocalRollback({ fs, dir: repo.dir, now }).revert(request(extra))).rejects.toMatchObject({ code, kind: 'stalling' });
      expect(repo.head()).toBe(before);
    });

    it('a service created with the bad digest has no earlier digest to go back to', async () => {
      const repo = newRepo();
      repo.commit('Add checkout', { 'staging/services/checkout.yaml': serviceYaml('checkout', DIGEST.b) });
      await expect(createLocalRollback({ fs, dir: repo.dir, now }).revert(request())).rejects.toMatchObject({ code: 'NO_PREVIOUS_DIGEST' });
    });
  });
});

describe('recognising a rollback commit', () => {
  it('our revert commits, and a person\'s own git revert, are rollbacks; reverting a revert and a promotion are not', async () => {
    const repo = newRepo();
    const { bump } = standardHistory(repo);
    const ours = await createLocalRollback({ fs, dir: repo.dir, now }).revert(request());
    const messageOf = (sha: string) => ({ message: repo.git('log', '-1', '--format=%B', sha) });
    expect(isRollbackCommit(messageOf(ours.commit))).toBe(true);
    expect(isRollbackCommit(messageOf(bump))).toBe(false);

    const repo2 = newRepo();
    const h = standardHistory(repo2);
    repo2.git('revert', '--no-edit', h.bump);
    const personal = repo2.head();
    expect(isRollbackCommit(messageOf2(repo2, personal))).toBe(true);
    repo2.git('revert', '--no-edit', personal);
    expect(isRollbackCommit(messageOf2(repo2, repo2.head()))).toBe(false);
  });
});

function messageOf2(repo: TestRepo, sha: string) {
  return { message: repo.git('log', '-1', '--format=%B', sha) };
}
