import { commitTree, diffTrees, openRepo, readTreeEntriesForTest, type EnvRepo } from './treeaccess.js';
import { exampleRepo, git, type TestRepo } from './gitrepo.js';

describe('git tree objects read as bytes', () => {
  let repo: TestRepo & { first: string };
  let env: EnvRepo;
  beforeEach(async () => {
    repo = exampleRepo();
    env = await openRepo({ repo: repo.dir });
  });
  afterEach(() => repo.cleanup());

  it('parse into the entries `git ls-tree` prints, in the same order', async () => {
    repo.commit({ 'a-b.yaml': 'x', 'a.yaml': 'y', 'a/z.yaml': 'z', 'run.sh': 'echo' });
    git(repo.dir, 'update-index', '--chmod=+x', 'run.sh');
    git(repo.dir, 'commit', '-q', '-m', 'exec');
    const tree = git(repo.dir, 'rev-parse', 'HEAD^{tree}');
    const expected = git(repo.dir, 'ls-tree', tree)
      .split('\n')
      .map((line) => {
        const [meta, path] = line.split('\t');
        const [mode, type, oid] = meta!.split(' ');
        return { mode, type, oid, path };
      });
    expect(await readTreeEntriesForTest(env, tree)).toEqual(expected);
  });

  describe('diffed by bytes', () => {
    it('finds a file replaced by a directory of the same name among names that sort around it', async () => {
      const base = repo.commit({ 'x/foo': 'file', 'x/foo.txt': 'a', 'x/foo-bar': 'b', 'x/fop': 'c' });
      const next = repo.commit({ 'x/foo': null, 'x/foo/inner.yaml': 'now a dir', 'x/fop': 'changed' });
      const changes = await diffTrees(env, await commitTree(env, base), await commitTree(env, next));
      expect(changes).toEqual([
        { path: 'x/foo', kind: 'removed' },
        { path: 'x/foo/inner.yaml', kind: 'added' },
        { path: 'x/fop', kind: 'modified' },
      ]);
      // git agrees
      expect(git(repo.dir, 'diff', '--name-status', base, next).split('\n').sort()).toEqual(['A\tx/foo/inner.yaml', 'D\tx/foo', 'M\tx/fop']);
    });

    it('reports a mode change as a modification', async () => {
      const base = repo.commit({ 'tool.sh': 'echo hi' });
      git(repo.dir, 'update-index', '--chmod=+x', 'tool.sh');
      git(repo.dir, 'commit', '-q', '-m', 'exec');
      const next = git(repo.dir, 'rev-parse', 'HEAD');
      expect(await diffTrees(env, await commitTree(env, base), await commitTree(env, next))).toEqual([{ path: 'tool.sh', kind: 'modified' }]);
    });
  });
});
