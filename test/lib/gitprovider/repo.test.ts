import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Repo } from '../../../lib/gitprovider/index.js';

describe('repository object access', () => {
  let dir: string;
  let git: (...args: string[]) => string;
  let at = 1_700_000_000;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'slipway-repo-'));
    git = (...args) =>
      execFileSync('git', args, {
        cwd: dir,
        encoding: 'utf8',
        env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@x', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@x', GIT_COMMITTER_DATE: `${(at += 60)} +0000`, GIT_AUTHOR_DATE: `${at} +0000` },
      }).trim();
    const commit = (name: string) => {
      writeFileSync(join(dir, `${name}.txt`), name);
      git('add', '-A');
      git('commit', '-q', '-m', name);
    };
    git('init', '-q', '-b', 'main');
    commit('a');
    commit('b');
    git('checkout', '-q', '-b', 'left');
    commit('l1');
    git('checkout', '-q', 'main');
    commit('c');
    git('checkout', '-q', '-b', 'right');
    commit('r1');
    git('checkout', '-q', 'main');
    git('merge', '-q', '--no-ff', '-m', 'merge left', 'left');
    git('checkout', '-q', 'right');
    git('merge', '-q', '--no-ff', '-m', 'merge main into right', 'main');
    commit('r2');
    git('checkout', '-q', 'left');
    commit('l2');
    git('checkout', '-q', 'main');
    commit('d');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const refs = ['main', 'left', 'right', 'main~2', 'right~1', 'main~1^2'];

  it('finds the same merge base as git merge-base for every pair of a branched and merged history', async () => {
    const repo = Repo.open(dir);
    for (const a of refs) {
      for (const b of refs) {
        const [oa, ob] = [git('rev-parse', a), git('rev-parse', b)];
        if (refs.indexOf(b) < refs.indexOf(a)) continue;
        expect(`${a} ${b} ${await repo.mergeBase(oa, ob)}`).toBe(`${a} ${b} ${git('merge-base', a, b)}`);
      }
    }
  });

  it('agrees with git merge-base --is-ancestor on containment', async () => {
    const repo = Repo.open(dir);
    for (const a of refs) {
      for (const b of refs) {
        let expected = true;
        try {
          git('merge-base', '--is-ancestor', b, a);
        } catch {
          expected = false;
        }
        expect(`${b} in ${a}: ${await repo.contains(git('rev-parse', a), git('rev-parse', b))}`).toBe(`${b} in ${a}: ${expected}`);
      }
    }
  });

  it('says what to pass when a path is not a repository, that an http(s) URL is opened by fetching it, and that ssh is not supported', () => {
    expect(() => Repo.open(tmpdir())).toThrow(/is not a git repository \(no \.git, not bare\); pass --repo <path> of the environments repository/);
    expect(() => Repo.open('https://bot:s3cret@git.example/shop/envs.git')).toThrow(/^https:\/\/git\.example\/shop\/envs\.git: an http\(s\) remote is fetched first; open it with openRepository\(\)/);
    expect(() => Repo.open('ssh://git.example/shop/envs.git')).toThrow(/\(ssh and git:\/\/ are not\); use the http\(s\) URL of the repository/);
  });

  it('reads files and directories at a commit, and nothing where there is nothing', async () => {
    const repo = Repo.open(dir);
    const main = git('rev-parse', 'main');
    expect(await repo.readFile(main, 'l1.txt')).toBe('l1');
    expect(await repo.readFile(main, 'r1.txt')).toBeUndefined();
    expect(await repo.readFile(main, 'a.txt/x')).toBeUndefined();
    expect((await repo.listDir(main, '')).sort()).toEqual(['a.txt', 'b.txt', 'c.txt', 'd.txt', 'l1.txt']);
  });
});
