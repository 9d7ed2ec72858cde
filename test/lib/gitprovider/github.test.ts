import { GitHubProvider, type Verifier } from '../../../lib/gitprovider/index.js';
import type { DigestChange } from '../../../lib/gitprovider/index.js';
import type { VerificationResult } from '../../../lib/provenance/types.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeGitHub, type FakeGitHubOptions } from '../../support/github/server.js';
import { digestOf, makeEnvRepo, OLD_DIGEST, type TestRepo } from '../../support/promotion-repo.js';

const NEW = digestOf('ab');
const NEWER = digestOf('cd');
const SOURCE = { repo: 'https://git.example/shop/web', ref: 'refs/heads/main', commit: 'e'.repeat(40) };
const TOKENS = { 'tok-bot': 'slipway-bot', 'tok-alice': 'alice', 'tok-bob': 'bob' };
const clock = () => new Date('2026-11-23T10:00:00Z');

const verified: Verifier = async (req): Promise<VerificationResult> => ({
  ok: true,
  provenance: { digest: req.digest, builderId: 'https://slipway.dev/builder/local', sourceRepo: SOURCE.repo, sourceRef: SOURCE.ref, sourceCommit: SOURCE.commit, keyName: 'builder' },
});
const unsigned: Verifier = async () => ({ ok: false, code: 'NO_ATTESTATION', message: 'no attestation found next to the image' });

function change(overrides: Partial<DigestChange> = {}): DigestChange {
  return { environment: 'staging', service: 'web', digest: NEW, repository: 'localhost:5000/web', source: SOURCE, provenance: 'localhost:5000/web:sha256-ab.att', ...overrides };
}

describe('github git provider (octokit against a GitHub REST stand-in)', () => {
  let r: TestRepo;
  let gh: FakeGitHub;
  const as = (token: keyof typeof TOKENS, verify: Verifier = verified, reviewers: string[] = [], maxAttempts?: number) =>
    new GitHubProvider({ owner: 'shop', repo: 'environments', token: token, baseUrl: gh.url, verify, clock, reviewers, maxAttempts });

  async function setup(options: Parameters<typeof makeEnvRepo>[0] = {}, allowAutoMerge = true, server: Partial<FakeGitHubOptions> = {}) {
    r = makeEnvRepo({ bare: true, ...options });
    gh = await new FakeGitHub({ owner: 'shop', repo: 'environments', gitdir: r.repo, tokens: TOKENS, allowAutoMerge, clock, ...server }).start();
  }

  /** A person commits on main with the git CLI (their clone pushes to the bare repository GitHub serves). */
  function personCommitsOnMain(edit: { file: string; from: string; to: string } | undefined, message: string): string {
    r.git(['pull', '-q', '--ff-only']);
    if (edit) {
      const path = join(r.work, edit.file);
      writeFileSync(path, readFileSync(path, 'utf8').replace(edit.from, edit.to));
      r.git(['commit', '-q', '-am', message]);
    } else {
      r.git(['commit', '-q', '--allow-empty', '-m', message]);
    }
    r.git(['push', '-q', 'origin', 'main']);
    return r.git(['rev-parse', 'HEAD']);
  }
  const merges = () => gh.requests.filter((q) => q.method === 'PUT' && /\/pulls\/\d+\/merge$/.test(q.path));
  afterEach(async () => {
    await gh?.stop();
    r?.cleanup();
  });

  describe('proposing to an environment with auto-merge', () => {
    it('writes the branch and commit through the git data API, with the trailers git reads', async () => {
      await setup();
      const p = await as('tok-bot').propose(change());
      expect(p).toMatchObject({ id: `staging/web-${'ab'.repeat(6)}`, state: 'open', number: 1, author: 'slipway-bot', url: 'https://github.com/shop/environments/pull/1' });
      expect(r.git(['rev-parse', p.branch], r.repo)).toBe(p.headCommit);
      expect(r.git(['log', '-1', '--format=%(trailers:key=Slipway-Image,valueonly)', p.branch], r.repo)).toBe(`localhost:5000/web@${NEW}`);
      expect(r.git(['diff', '--numstat', 'main', p.branch], r.repo)).toBe('1\t1\tstaging/services/web.yaml');
      r.git(['fsck', '--strict', '--no-dangling'], r.repo);
      const paths = gh.requests.map((q) => `${q.method} ${q.path.replace(/\?.*$/, '')}`);
      expect(paths).toEqual(expect.arrayContaining(['POST /repos/shop/environments/git/trees', 'POST /repos/shop/environments/git/commits', 'POST /repos/shop/environments/git/refs', 'POST /repos/shop/environments/pulls']));
    });

    it('opens a pull request whose body shows old and new digest, source, builder and verification, labelled, with a success status and auto-merge on', async () => {
      await setup();
      await as('tok-bot').propose(change());
      const pr = gh.pulls[0]!;
      expect(pr.body).toContain(`| old | \`${OLD_DIGEST}\` |`);
      expect(pr.body).toContain(`| new | \`${NEW}\` |`);
      expect(pr.body).toContain(`\`${SOURCE.repo}\` @ \`${SOURCE.commit}\``);
      expect(pr.body).toContain('**Builder:** `https://slipway.dev/builder/local`');
      expect(pr.body).toContain('✅ verified');
      expect(pr.labels).toEqual(['slipway', 'env:staging']);
      expect(gh.statuses).toEqual([expect.objectContaining({ sha: expect.any(String), state: 'success', context: 'slipway/provenance' })]);
      expect(pr.auto_merge).toMatchObject({ enabled_by: { login: 'slipway-bot' }, merge_method: 'merge' });
    });

    it('sets a failure status, shows the refusal and leaves auto-merge off when the provenance does not verify', async () => {
      await setup();
      await as('tok-bot', unsigned).propose(change());
      const pr = gh.pulls[0]!;
      expect(pr.body).toContain('❌ **NO_ATTESTATION** — no attestation found next to the image');
      expect(gh.statuses[0]).toMatchObject({ state: 'failure', description: 'NO_ATTESTATION: no attestation found next to the image' });
      expect(pr.auto_merge).toBeNull();
    });

    it('leaves auto-merge off when the repository does not allow it', async () => {
      await setup({}, false);
      await as('tok-bot').propose(change());
      expect(gh.pulls[0]!.auto_merge).toBeNull();
      expect(gh.requests.some((q) => q.path === '/graphql')).toBe(false);
    });
  });

  describe('in an environment that needs two approvals', () => {
    it('requests reviewers, counts PR reviews as approvals, refuses the author, and merges with the approvers recorded', async () => {
      await setup({ productionApprovals: 2 });
      const bot = as('tok-bot', verified, ['alice', 'bob']);
      const p = await bot.propose(change({ environment: 'production' }));
      expect(gh.pulls[0]!.requested_reviewers).toEqual(['alice', 'bob']);
      expect(gh.pulls[0]!.auto_merge).toBeNull();
      await expect(bot.merge(p.id, { actor: 'slipway-bot' })).rejects.toMatchObject({ code: 'APPROVALS_MISSING' });
      await expect(bot.approve(p.id, 'slipway-bot')).rejects.toMatchObject({ code: 'SELF_APPROVAL', message: expect.stringContaining('Can not approve your own pull request') });
      await as('tok-alice').approve(p.id, 'alice');
      await as('tok-bob').approve(`#${p.number}`, 'bob');
      expect((await bot.status(p.id)).approvals).toEqual(['alice', 'bob']);
      const { mergeCommit } = await bot.merge(p.id, { actor: 'Robin <robin@example.com>' });
      expect(r.git(['rev-parse', 'main'], r.repo)).toBe(mergeCommit);
      expect(r.git(['show', 'main:production/services/web.yaml'], r.repo)).toContain(`digest: ${NEW}`);
      expect(r.git(['log', '-1', '--format=%(trailers:key=Slipway-Approved-By,valueonly,separator=%x2C)', 'main'], r.repo)).toBe('alice,bob');
      expect(r.git(['log', '-1', '--format=%(trailers:key=Slipway-Merged-By,valueonly)', 'main'], r.repo)).toBe('Robin <robin@example.com>');
      expect((await bot.status(p.id)).state).toBe('merged');
      r.git(['fsck', '--strict', '--no-dangling'], r.repo);
    });
  });

  describe('two proposals for the same service', () => {
    it('closes the older pull request with a note and deletes its branch', async () => {
      await setup();
      const bot = as('tok-bot');
      const older = await bot.propose(change());
      const newer = await bot.propose(change({ digest: NEWER }));
      expect(gh.pulls[0]).toMatchObject({ state: 'closed', merged_at: null });
      expect(gh.comments.get(1)?.[0]?.body).toBe(`Superseded by #2 (${newer.id}); closing.`);
      expect((await bot.status(older.id)).state).toBe('superseded');
      expect(r.git(['branch', '--list', older.branch], r.repo)).toBe('');
      expect((await bot.list({ environment: 'staging' })).map((p) => `${p.number}:${p.state}`)).toEqual(['1:superseded', '2:open']);
    });
  });

  describe('during a freeze window', () => {
    it('refuses the merge with the window name and end', async () => {
      await setup({
        productionFreeze: "apiVersion: slipway.dev/v1\nkind: FreezeWindows\nspec:\n  windows:\n    - name: weekend\n      cron: '0 18 * * 5'\n      duration: 2d15h\n      timeZone: Europe/Berlin\n",
      });
      const bot = as('tok-bot');
      const p = await bot.propose(change({ environment: 'production' }));
      await expect(bot.merge(p.id, { actor: 'robin', now: new Date('2026-11-28T12:00:00Z') })).rejects.toMatchObject({
        code: 'FROZEN',
        message: expect.stringContaining('"weekend" until 2026-11-30T09:00:00+01:00'),
      });
      expect(gh.pulls[0]!.state).toBe('open');
    });
  });
  describe('publishing the verification outcome on the proposal commit', () => {
    it('creates a completed check run whose conclusion and title carry the refusal code when the token is a GitHub App token', async () => {
      await setup({}, true, { appTokens: ['tok-bot'] });
      const p = await as('tok-bot', unsigned).propose(change());
      expect(gh.checkRuns).toEqual([
        expect.objectContaining({
          name: 'slipway/provenance',
          head_sha: p.headCommit,
          status: 'completed',
          conclusion: 'failure',
          output: { title: 'Provenance refused: NO_ATTESTATION', summary: expect.stringMatching(/^\*\*NO_ATTESTATION\*\*: no attestation found next to the image/) },
        }),
      ]);
      expect(gh.statuses).toEqual([]);
      expect(gh.pulls[0]!.body).toContain('- **Check:** `slipway/provenance` check run');

      await as('tok-bot').propose(change({ environment: 'production' }));
      expect(gh.checkRuns[1]).toMatchObject({ conclusion: 'success', output: { title: 'Provenance verified', summary: expect.stringContaining('built by `https://slipway.dev/builder/local`') } });
    });

    it('falls back to a commit status, says so in the pull request, and does not ask again when GitHub answers 403 to the check run', async () => {
      await setup();
      const bot = as('tok-bot', unsigned);
      const p = await bot.propose(change());
      const refused = gh.requests.filter((q) => q.path.endsWith('/check-runs'));
      expect(refused).toHaveLength(1);
      expect(gh.checkRuns).toEqual([]);
      expect(gh.statuses).toEqual([expect.objectContaining({ sha: p.headCommit, state: 'failure', context: 'slipway/provenance', description: 'NO_ATTESTATION: no attestation found next to the image' })]);
      expect(gh.pulls[0]!.body).toContain('check runs need a GitHub App installation token and GitHub answered 403 to this token');
      await bot.propose(change({ environment: 'production' }));
      expect(gh.requests.filter((q) => q.path.endsWith('/check-runs'))).toHaveLength(1);
      expect(gh.statuses).toHaveLength(2);
    });
  });

  describe('when main moves while a proposal waits to be merged', () => {
    it('answers 405 "Base branch was modified" by catching the branch up with a fast-forward commit, then merges', async () => {
      await setup({}, true, { requireUpToDate: true });
      const bot = as('tok-bot');
      const p = await bot.propose(change());
      const theirs = personCommitsOnMain({ file: 'production/services/web.yaml', from: 'replicas: 2', to: 'replicas: 3' }, 'production web: three replicas');
      const { mergeCommit } = await bot.merge(p.id, { actor: 'Robin <robin@example.com>' });

      expect(merges()).toHaveLength(2);
      const head = r.git(['rev-parse', p.branch], r.repo);
      expect(r.git(['log', '-1', '--format=%P', head], r.repo)).toBe(`${p.headCommit} ${theirs}`);
      r.git(['merge-base', '--is-ancestor', p.headCommit, head], r.repo);
      expect(r.git(['log', '-1', '--format=%P', 'main'], r.repo)).toBe(`${theirs} ${head}`);
      expect(r.git(['rev-parse', 'main'], r.repo)).toBe(mergeCommit);
      expect(r.git(['show', 'main:staging/services/web.yaml'], r.repo)).toContain(`digest: ${NEW}`);
      expect(r.git(['show', 'main:production/services/web.yaml'], r.repo)).toContain('replicas: 3');
      expect(gh.statuses.map((st) => st.sha)).toEqual([p.headCommit, head]);
      r.git(['fsck', '--strict', '--no-dangling'], r.repo);
    });

    it('answers 405 "Pull Request is not mergeable" after a person edited the same file by re-applying the bump to their version', async () => {
      await setup();
      const bot = as('tok-bot');
      const p = await bot.propose(change());
      personCommitsOnMain({ file: 'staging/services/web.yaml', from: 'replicas: 2', to: 'replicas: 4' }, 'staging web: four replicas');
      await bot.merge(p.id, { actor: 'robin' });

      expect(merges()).toHaveLength(2);
      expect(gh.requests.some((q) => q.method === 'PATCH' && decodeURIComponent(q.path).endsWith(`/git/refs/heads/${p.branch}`) && (q.body as { force?: boolean }).force === false)).toBe(true);
      const file = r.git(['show', 'main:staging/services/web.yaml'], r.repo);
      expect(file).toContain(`digest: ${NEW}`);
      expect(file).toContain('replicas: 4 # two is enough here');
      expect(file).toContain('# web: owned by the storefront team');
      r.git(['fsck', '--strict', '--no-dangling'], r.repo);
    });

    it('answers 409 "Head branch was modified" by reading the pull request again and merging its new head', async () => {
      await setup();
      const bot = as('tok-bot');
      const p = await bot.propose(change());
      let pushed: string | undefined;
      gh.beforeRequest = (method, path) => {
        if (method !== 'PUT' || !path.endsWith('/merge') || pushed) return;
        r.git(['fetch', '-q', 'origin']);
        r.git(['checkout', '-q', '-b', 'fix', `origin/${p.branch}`]);
        r.git(['commit', '-q', '--allow-empty', '-m', 'note for reviewers']);
        r.git(['push', '-q', 'origin', `fix:${p.branch}`]);
        pushed = r.git(['rev-parse', 'HEAD']);
      };
      await bot.merge(p.id, { actor: 'robin' });
      expect(merges().map((q) => (q.body as { sha: string }).sha)).toEqual([p.headCommit, pushed]);
      expect(r.git(['log', '-1', '--format=%P', 'main'], r.repo).split(' ')[1]).toBe(pushed);
    });

    it('refuses with NOT_MERGEABLE and GitHub\'s reason when the branch already holds main and GitHub still answers 405', async () => {
      await setup();
      const bot = as('tok-bot');
      const p = await bot.propose(change());
      gh.mergeBlockedBy = 'Required status check "ci/test" is expected.';
      await expect(bot.merge(p.id, { actor: 'robin' })).rejects.toMatchObject({
        code: 'NOT_MERGEABLE',
        message: `GitHub will not merge #1: Required status check "ci/test" is expected. (see the pull request for failing checks, required reviews or branch rules)`,
      });
      expect(merges()).toHaveLength(1);
      expect(gh.requests.some((q) => q.method === 'PATCH' && q.path.includes('/git/refs/'))).toBe(false);
      expect(gh.pulls[0]!.state).toBe('open');
    });

    it('gives up with REF_MOVED after a bounded number of attempts when main keeps moving, never forcing', async () => {
      await setup({}, true, { requireUpToDate: true });
      const bot = as('tok-bot', verified, [], 3);
      const p = await bot.propose(change());
      let n = 0;
      gh.beforeRequest = (method, path) => {
        if (method === 'PUT' && path.endsWith('/merge')) personCommitsOnMain(undefined, `busy ${++n}`);
      };
      await expect(bot.merge(p.id, { actor: 'robin' })).rejects.toMatchObject({ code: 'REF_MOVED', message: expect.stringContaining('after 3 attempts: Base branch was modified. Review and try the merge again.') });
      expect(merges()).toHaveLength(3);
      expect(r.git(['log', '-1', '--format=%s', 'main'], r.repo)).toBe('busy 3');
      const refUpdates = gh.requests.filter((q) => q.method === 'PATCH' && q.path.includes('/git/refs/'));
      expect(refUpdates).toHaveLength(2);
      expect(refUpdates.map((q) => (q.body as { force?: boolean }).force)).toEqual([false, false]);
    });
  });
});
