import { execFileSync } from 'node:child_process';
import { formatProblem } from '../../../schemas/index.js';
import { loadDesiredState, openRepo, resolveRef, type EnvRepo } from '../../../lib/envrepo/index.js';
import { exampleRepo, git, type TestRepo } from './gitrepo.js';

describe('loading the desired state from a commit', () => {
  let repo: TestRepo & { first: string };
  let env: EnvRepo;
  beforeEach(async () => {
    repo = exampleRepo();
    env = await openRepo({ repo: repo.dir });
  });
  afterEach(() => repo.cleanup());

  describe('of the example environments repository', () => {
    it('reads every environment in promotion order with its services, freeze windows and trusted keys', async () => {
      const result = await loadDesiredState({ repo: env, commit: repo.first });
      if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
      const { state } = result;
      expect(state.commit).toBe(repo.first);
      expect(state.environments.map((e) => e.name)).toEqual(['staging', 'production']);
      expect(Object.keys(state.environments[0]!.services)).toEqual(['hello']);
      expect(state.environments[0]!.services.hello!.spec.image.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(state.environments[1]!.freeze?.spec.windows.map((w) => w.name)).toEqual(['year-end', 'sunday-maintenance']);
      expect(state.environments[0]!.freeze).toBeUndefined();
      expect(state.publicKeys.slipway).toBe(repo.read('keys/slipway.pub'));
      expect(state.quarantine).toEqual([]);
    });
  });

  describe('when the working tree differs from the commit', () => {
    it('reads the commit, not the files on disk', async () => {
      const second = repo.commit({ 'staging/services/hello.yaml': repo.read('staging/services/hello.yaml').replace('replicas: 1', 'replicas: 3') });
      execFileSync('sh', ['-c', 'echo "garbage: [" > staging/services/hello.yaml'], { cwd: repo.dir });
      const atFirst = await loadDesiredState({ repo: env, commit: repo.first });
      const atSecond = await loadDesiredState({ repo: env, commit: second });
      expect(atFirst.ok && atFirst.state.environments[0]!.services.hello!.spec.replicas).toBe(1);
      expect(atSecond.ok && atSecond.state.environments[0]!.services.hello!.spec.replicas).toBe(3);
    });
  });

  describe('when commits land and objects are repacked between loads', () => {
    it('sees the new commit through the same opened repository, loose or packed', async () => {
      expect((await loadDesiredState({ repo: env, commit: repo.first })).ok).toBe(true);
      const second = repo.commit({ 'staging/services/hello.yaml': repo.read('staging/services/hello.yaml').replace('replicas: 1', 'replicas: 5') });
      const loose = await loadDesiredState({ repo: env, commit: second });
      expect(loose.ok && loose.state.environments[0]!.services.hello!.spec.replicas).toBe(5);
      git(repo.dir, 'gc', '-q', '--prune=now');
      const third = repo.commit({ 'staging/services/hello.yaml': repo.read('staging/services/hello.yaml').replace('replicas: 5', 'replicas: 6') });
      const packed = await loadDesiredState({ repo: env, commit: third });
      expect(packed.ok && packed.state.environments[0]!.services.hello!.spec.replicas).toBe(6);
      expect((await loadDesiredState({ repo: env, commit: repo.first })).ok).toBe(true);
    });
  });

  describe('resolving a ref', () => {
    it('turns a branch, a tag, HEAD and an abbreviated id into the commit id git names', async () => {
      git(repo.dir, 'tag', '-a', 'v1', '-m', 'release');
      expect(await resolveRef({ repo: env, ref: 'main' })).toBe(repo.first);
      expect(await resolveRef({ repo: env, ref: 'v1' })).toBe(repo.first);
      expect(await resolveRef({ repo: env })).toBe(repo.first);
      expect(await resolveRef({ repo: env, ref: repo.first.slice(0, 8) })).toBe(repo.first);
    });

    it('walks parents for ~N and ^ as git does', async () => {
      repo.commit({ 'a.txt': 'a' });
      repo.commit({ 'b.txt': 'b' });
      for (const ref of ['HEAD~1', 'HEAD^', 'main~2', 'HEAD^^', 'HEAD~1^']) {
        expect(await resolveRef({ repo: env, ref })).toBe(git(repo.dir, 'rev-parse', ref));
      }
      await expect(resolveRef({ repo: env, ref: 'HEAD~3' })).rejects.toMatchObject({ code: 'REF_NOT_FOUND' });
    });

    it('refuses an unknown ref with a sentence naming it', async () => {
      await expect(resolveRef({ repo: env, ref: 'nope' })).rejects.toMatchObject({ code: 'REF_NOT_FOUND', message: expect.stringContaining('nope') });
    });
  });

  describe('opening a bare clone', () => {
    it('reads the same state as the working repository', async () => {
      const bare = `${repo.dir}-bare.git`;
      execFileSync('git', ['clone', '-q', '--bare', repo.dir, bare]);
      try {
        const bareRepo = await openRepo({ repo: bare });
        const commit = await resolveRef({ repo: bareRepo, ref: 'main' });
        const result = await loadDesiredState({ repo: bareRepo, commit });
        expect(result.ok).toBe(true);
      } finally {
        execFileSync('rm', ['-rf', bare]);
      }
    });
  });

  describe('a path that is not a repository', () => {
    it('says how to make one', async () => {
      await expect(openRepo({ repo: '/nonexistent/slipway' })).rejects.toMatchObject({ code: 'NOT_A_REPOSITORY' });
    });
  });
});
