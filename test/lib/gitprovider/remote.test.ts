/**
 * The local provider on an environments repository behind an http(s) git remote: `git http-backend` on
 * loopback, with the `git` CLI as the independent reader of what landed on the server.
 */
import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileAuditLog, LocalGitProvider, RemoteRepo, type DigestChange } from '../../../lib/gitprovider/index.js';
import { startGitHttp, type GitHttpServer } from '../../support/git-http.js';
import { acceptingVerifier as verify, digestChange, digestOf, fixedClock as clock, makeEnvRepo, type TestRepo } from '../../support/promotion-repo.js';

const NEW = digestOf('ab');
const NEWER = digestOf('cd');
const change = (overrides: Partial<DigestChange> = {}): DigestChange => digestChange(NEW, overrides);

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Pat Person',
  GIT_AUTHOR_EMAIL: 'pat@example.com',
  GIT_COMMITTER_NAME: 'Pat Person',
  GIT_COMMITTER_EMAIL: 'pat@example.com',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
};

/** The git CLI, run without blocking: the http server it talks to lives in this process. */
async function gitAsync(args: string[], cwd: string): Promise<string> {
  const { stdout } = await promisify(execFile)('git', args, { cwd, env: GIT_ENV, encoding: 'utf8', timeout: 30_000 });
  return stdout.trim();
}

describe('local git provider on an http(s) remote', () => {
  let r: TestRepo;
  let server: GitHttpServer;
  let url: string;

  beforeEach(async () => {
    r = makeEnvRepo({ bare: true });
    r.git(['config', 'http.receivepack', 'true'], r.repo);
    server = await startGitHttp(r.root);
    url = `${server.url}/envs.git`;
  });
  afterEach(async () => {
    await server.close();
    r.cleanup();
  });

  /** A person's clone of the remote, made over http by the git CLI. */
  async function personClone(name: string): Promise<(args: string[]) => Promise<string>> {
    await gitAsync(['clone', '-q', url, name], r.root);
    return (args) => gitAsync(args, join(r.root, name));
  }

  describe('proposing and merging through the URL', () => {
    it('pushes the proposal branch and then the merge to main, and a fresh git clone of the remote holds both', async () => {
      const audit = join(r.root, 'audit.jsonl');
      const repo = await RemoteRepo.connect(url, { mirror: join(r.root, 'mirror.git') });
      const provider = new LocalGitProvider({ repo, verify, clock, audit: fileAuditLog(audit) });
      const p = await provider.propose(change());
      expect(r.git(['rev-parse', `refs/heads/${p.branch}`], r.repo)).toBe(p.headCommit);

      const merged = await provider.merge(p.id, { actor: 'Sam <sam@example.com>' });
      expect(r.git(['rev-parse', 'main'], r.repo)).toBe(merged.mergeCommit);
      r.git(['fsck', '--strict', '--no-dangling'], r.repo);

      const person = await personClone('check');
      expect(await person(['show', 'origin/main:staging/services/web.yaml'])).toContain(`digest: ${NEW}`);
      expect(await person(['show', 'origin/main:staging/services/web.yaml'])).toContain('# web: owned by the storefront team');
      expect(await person(['log', '-1', '--format=%P|%an|%(trailers:key=Slipway-Merged-By,valueonly)', 'origin/main'])).toBe(`${r.git(['rev-parse', 'main~1'], r.repo)} ${p.headCommit}|Sam|Sam <sam@example.com>`);
      expect(await person(['branch', '-r', '--merged', 'origin/main'])).toContain(`origin/${p.branch}`);
      await person(['fsck', '--strict', '--no-dangling']);
      const actions = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { action: string; attempts?: number });
      expect(actions.map((a) => a.action)).toEqual(['proposed', 'merged']);
    });

    it('leaves a proposal a person merges with plain git and pushes; the next look through the URL sees it merged', async () => {
      const provider = new LocalGitProvider({ repo: await RemoteRepo.connect(url, { mirror: join(r.root, 'mirror.git') }), verify, clock });
      const p = await provider.propose(change());
      const person = await personClone('person');
      await person(['merge', '-q', '--no-ff', '-m', `merge ${p.id} by hand`, `origin/${p.branch}`]);
      await person(['push', '-q', 'origin', 'main']);

      const again = new LocalGitProvider({ repo: await RemoteRepo.connect(url, { mirror: join(r.root, 'mirror.git') }), verify, clock });
      expect((await again.status(p.id)).state).toBe('merged');
      expect((await again.list({ state: 'open' })).map((x) => x.id)).toEqual([]);
    });

    it('publishes superseded proposals under refs/slipway/closed/, which another machine with its own mirror reads', async () => {
      const provider = new LocalGitProvider({ repo: await RemoteRepo.connect(url, { mirror: join(r.root, 'mirror-a.git') }), verify, clock });
      const older = await provider.propose(change());
      const newer = await provider.propose(change({ digest: NEWER }));
      expect(r.git(['branch', '--list', 'slipway/*'], r.repo)).toBe(`slipway/${newer.id}`);
      expect(r.git(['for-each-ref', '--format=%(refname)', 'refs/slipway/'], r.repo)).toBe(`refs/slipway/closed/${older.id}`);

      const elsewhere = new LocalGitProvider({ repo: await RemoteRepo.connect(url, { mirror: join(r.root, 'mirror-b.git') }), verify, clock });
      expect((await elsewhere.list()).map((p) => [p.id, p.state])).toEqual([
        [older.id, 'superseded'],
        [newer.id, 'open'],
      ].sort((a, b) => a[0]!.localeCompare(b[0]!)));
    });
  });

  describe('when someone pushes to main between Slipway reading it and pushing the merge', () => {
    it('is refused by the remote, fetches, rebuilds the merge on the new main and pushes that, never forcing', async () => {
      const person = await personClone('person');
      let moved = false;
      const repo = await RemoteRepo.connect(url, {
        mirror: join(r.root, 'mirror.git'),
        beforePush: async (ref) => {
          if (ref !== 'refs/heads/main' || moved) return;
          moved = true;
          // The same service file, another field: the rebuilt merge must keep the person's edit and the bump.
          const file = join(r.root, 'person', 'staging/services/web.yaml');
          writeFileSync(file, readFileSync(file, 'utf8').replace('replicas: 2', 'replicas: 5'));
          await person(['commit', '-q', '-am', 'staging web: five replicas']);
          await person(['push', '-q', 'origin', 'main']);
        },
      });
      const audit = join(r.root, 'audit.jsonl');
      const provider = new LocalGitProvider({ repo, verify, clock, audit: fileAuditLog(audit) });
      const p = await provider.propose(change());
      const theirs = () => person(['rev-parse', 'HEAD']);
      const merged = await provider.merge(p.id, { actor: 'Sam <sam@example.com>' });
      expect(moved).toBe(true);

      expect(r.git(['rev-parse', 'main'], r.repo)).toBe(merged.mergeCommit);
      expect(r.git(['log', '-1', '--format=%P', 'main'], r.repo)).toBe(`${await theirs()} ${p.headCommit}`);
      const file = r.git(['show', 'main:staging/services/web.yaml'], r.repo);
      expect(file).toContain(`digest: ${NEW}`);
      expect(file).toContain('replicas: 5 # two is enough here');
      r.git(['fsck', '--strict', '--no-dangling'], r.repo);
      const events = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { action: string; attempts?: number });
      expect(events.at(-1)).toMatchObject({ action: 'merged', attempts: 2 });
      await person(['pull', '-q', '--ff-only']);
      expect(await person(['rev-parse', 'HEAD'])).toBe(merged.mergeCommit);
    });

    it('gives up after a bounded number of attempts with REF_MOVED when main keeps moving', async () => {
      const person = await personClone('person');
      let pushes = 0;
      const repo = await RemoteRepo.connect(url, {
        mirror: join(r.root, 'mirror.git'),
        beforePush: async (ref) => {
          if (ref !== 'refs/heads/main') return;
          pushes++;
          await person(['commit', '-q', '--allow-empty', '-m', `busy ${pushes}`]);
          await person(['push', '-q', 'origin', 'main']);
        },
      });
      const provider = new LocalGitProvider({ repo, verify, clock, maxAttempts: 2 });
      const p = await provider.propose(change());
      await expect(provider.merge(p.id, { actor: 'sam' })).rejects.toMatchObject({ code: 'REF_MOVED' });
      expect(pushes).toBe(2);
      expect(r.git(['log', '-1', '--format=%s', 'main'], r.repo)).toBe('busy 2');
      expect(await repo.resolve('refs/heads/main')).toBe(r.git(['rev-parse', 'main'], r.repo));
    });

    it('reports a push the server refuses for another reason (a hook) as PUSH_REJECTED, and keeps the mirror at what the remote has', async () => {
      const hook = join(r.repo, 'hooks', 'pre-receive');
      writeFileSync(hook, '#!/bin/sh\necho "main is protected: merge through the review tool" >&2\nexit 1\n');
      chmodSync(hook, 0o755);
      const repo = await RemoteRepo.connect(url, { mirror: join(r.root, 'mirror.git') });
      const provider = new LocalGitProvider({ repo, verify, clock });
      await expect(provider.propose(change())).rejects.toMatchObject({
        code: 'PUSH_REJECTED',
        message: expect.stringContaining(`${url} refused the update of refs/heads/slipway/staging/web-abababababab: `),
      });
      expect(await repo.listRefs('refs/heads/slipway/')).toEqual([]);
    });
  });
});
