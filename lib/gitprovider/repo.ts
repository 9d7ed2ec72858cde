/**
 * Object-level access to an environments repository on disk (bare or with a working tree) through
 * isomorphic-git: read a file at a commit, write a tree with one file replaced, write commits, and move
 * a ref with compare-and-swap using git's own lock-file protocol (`<ref>.lock`, created exclusively,
 * renamed over the ref), so Slipway and a person running `git` never overwrite each other's work.
 */
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import git, { type TreeEntry } from 'isomorphic-git';
import { SlipwayError } from '../errors.js';

export interface Identity {
  name: string;
  email: string;
}

export interface RepoLocation {
  gitdir: string;
  /** The working tree, when the repository has one. */
  worktree?: string;
}

/** Find the git directory of `path`: a bare repository, a working tree with `.git`, or a linked worktree. */
export function locateRepo(path: string): RepoLocation {
  const dir = resolve(path.startsWith('file://') ? new URL(path).pathname : path);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path) && !path.startsWith('file://')) {
    const shown = path.replace(/\/\/[^/@]*@/, '//');
    throw new SlipwayError(
      'REMOTE_REPO_UNSUPPORTED',
      /^https?:/i.test(path)
        ? `${shown}: an http(s) remote is fetched first; open it with openRepository() (lib/gitprovider/remote.ts)`
        : `${shown}: only paths on disk, file:// and http(s) URLs are supported (ssh and git:// are not); use the http(s) URL of the repository`,
      'stalling',
      { repo: shown },
    );
  }
  const dotGit = join(dir, '.git');
  if (fs.existsSync(dotGit)) {
    if (fs.statSync(dotGit).isFile()) {
      const m = /^gitdir:\s*(.+)$/m.exec(fs.readFileSync(dotGit, 'utf8'));
      if (m) return { gitdir: resolve(dir, m[1]!.trim()), worktree: dir };
    }
    return { gitdir: dotGit, worktree: dir };
  }
  if (fs.existsSync(join(dir, 'HEAD')) && fs.existsSync(join(dir, 'objects'))) return { gitdir: dir };
  throw new SlipwayError('NOT_A_REPO', `${path} is not a git repository (no .git, not bare); pass --repo <path> of the environments repository`, 'stalling', {
    repo: path,
  });
}

export class Repo {
  readonly gitdir: string;
  readonly worktree?: string;
  readonly cache: object = {};

  constructor(location: RepoLocation) {
    this.gitdir = location.gitdir;
    this.worktree = location.worktree;
  }

  static open(path: string): Repo {
    return new Repo(locateRepo(path));
  }

  private get base() {
    return { fs, gitdir: this.gitdir, cache: this.cache };
  }

  async resolve(ref: string): Promise<string | undefined> {
    try {
      return await git.resolveRef({ fs, gitdir: this.gitdir, ref });
    } catch (err) {
      if ((err as { code?: string }).code === 'NotFoundError') return undefined;
      throw err;
    }
  }

  /** Where the repository is, as a person would name it. */
  describe(): string {
    return this.worktree ?? this.gitdir;
  }

  async mustResolve(ref: string, what: string): Promise<string> {
    const oid = await this.resolve(ref);
    if (!oid) throw new SlipwayError('REF_NOT_FOUND', `${what} (${ref}) does not exist in ${this.describe()}`, 'stalling', { ref });
    return oid;
  }

  // Git objects never change once written, so parsed commits and trees are kept by id for the life of the Repo.
  private readonly commits = new Map<string, Awaited<ReturnType<typeof git.readCommit>>['commit']>();
  private readonly trees = new Map<string, TreeEntry[]>();

  async readCommit(oid: string) {
    let commit = this.commits.get(oid);
    if (!commit) {
      commit = (await git.readCommit({ ...this.base, oid })).commit;
      this.commits.set(oid, commit);
    }
    return commit;
  }

  private async readTreeEntries(oid: string): Promise<TreeEntry[]> {
    let tree = this.trees.get(oid);
    if (!tree) {
      tree = (await git.readTree({ ...this.base, oid })).tree;
      this.trees.set(oid, tree);
    }
    return tree;
  }

  /** The entry `path` names in the tree of `commit`, or undefined when there is none. */
  async entryAt(commit: string, path: string): Promise<TreeEntry | undefined> {
    let entry: TreeEntry | undefined = { mode: '040000', path: '', oid: (await this.readCommit(commit)).tree, type: 'tree' };
    for (const segment of path.split('/').filter(Boolean)) {
      if (entry?.type !== 'tree') return undefined;
      entry = (await this.readTreeEntries(entry.oid)).find((e) => e.path === segment);
    }
    return entry;
  }

  /** The text of `path` at `commit`, or undefined when the file is not there. */
  async readFile(commit: string, path: string): Promise<string | undefined> {
    const entry = await this.entryAt(commit, path);
    if (entry?.type !== 'blob') return undefined;
    const { blob } = await git.readBlob({ ...this.base, oid: entry.oid });
    return Buffer.from(blob).toString('utf8');
  }

  async blobOid(commit: string, path: string): Promise<string | undefined> {
    const entry = await this.entryAt(commit, path);
    return entry?.type === 'blob' ? entry.oid : undefined;
  }

  /** Names of the entries of the directory `path` at `commit` (empty when it does not exist). */
  async listDir(commit: string, path: string): Promise<string[]> {
    const entry = await this.entryAt(commit, path);
    return entry?.type === 'tree' ? (await this.readTreeEntries(entry.oid)).map((e) => e.path) : [];
  }

  /** A new root tree: the tree of `commit` with `path` set to `content`. */
  async treeWithFile(commit: string, path: string, content: string): Promise<string> {
    const blob = await git.writeBlob({ fs, gitdir: this.gitdir, blob: Buffer.from(content, 'utf8') });
    const root = (await this.readCommit(commit)).tree;
    return this.replaceInTree(root, path.split('/'), blob);
  }

  private async replaceInTree(treeOid: string | undefined, segments: string[], blob: string): Promise<string> {
    const entries = treeOid ? [...(await this.readTreeEntries(treeOid))] : [];
    const [head, ...rest] = segments as [string, ...string[]];
    const existing = entries.findIndex((e) => e.path === head);
    let entry: TreeEntry;
    if (rest.length === 0) {
      entry = { mode: '100644', path: head, oid: blob, type: 'blob' };
    } else {
      const sub = existing >= 0 && entries[existing]!.type === 'tree' ? entries[existing]!.oid : undefined;
      entry = { mode: '040000', path: head, oid: await this.replaceInTree(sub, rest, blob), type: 'tree' };
    }
    if (existing >= 0) entries[existing] = entry;
    else entries.push(entry);
    const oid = await git.writeTree({ fs, gitdir: this.gitdir, tree: entries });
    return oid;
  }

  async writeCommit(input: { tree: string; parents: string[]; message: string; author: Identity; committer?: Identity; at: Date }): Promise<string> {
    const timestamp = Math.floor(input.at.getTime() / 1000);
    const who = (id: Identity) => ({ name: id.name, email: id.email, timestamp, timezoneOffset: 0 });
    return git.writeCommit({
      fs,
      gitdir: this.gitdir,
      commit: {
        message: input.message,
        tree: input.tree,
        parent: input.parents,
        author: who(input.author),
        committer: who(input.committer ?? input.author),
      },
    });
  }

  /** True when `ancestor` is `oid` or reachable from it. */
  async contains(oid: string, ancestor: string): Promise<boolean> {
    if (oid === ancestor) return true;
    return (await this.mergeBase(oid, ancestor)) === ancestor;
  }

  /**
   * The best common ancestor of two commits, found the way git's paint-down-to-common does: walk both
   * histories newest-first, marking which side reached each commit, and stop as soon as every commit
   * still queued is below a common ancestor. It visits the commits since the fork, not all history
   * (isomorphic-git's findMergeBase and isDescendent read every commit of a long history).
   */
  async mergeBase(a: string, b: string): Promise<string | undefined> {
    if (a === b) return a;
    const LEFT = 1;
    const RIGHT = 2;
    const STALE = 4;
    const flags = new Map<string, number>();
    const info = new Map<string, { time: number; parents: string[] }>();
    const queue: string[] = [];
    const push = async (oid: string, flag: number) => {
      const before = flags.get(oid) ?? 0;
      if ((before | flag) === before) return;
      flags.set(oid, before | flag);
      if (!info.has(oid)) {
        const c = await this.readCommit(oid);
        info.set(oid, { time: c.committer.timestamp, parents: c.parent });
      }
      if (queue.includes(oid)) return;
      const t = info.get(oid)!.time;
      let i = queue.length;
      while (i > 0 && info.get(queue[i - 1]!)!.time < t) i--;
      queue.splice(i, 0, oid);
    };
    await push(a, LEFT);
    await push(b, RIGHT);
    const results: string[] = [];
    while (queue.some((oid) => !(flags.get(oid)! & STALE))) {
      const oid = queue.shift()!;
      let f = flags.get(oid)!;
      if ((f & (LEFT | RIGHT)) === (LEFT | RIGHT)) {
        if (!(f & STALE)) results.push(oid);
        f |= STALE;
        flags.set(oid, f);
      }
      for (const p of info.get(oid)!.parents) await push(p, f);
    }
    // Newest first: the first common commit found is the best base (a later one is its ancestor).
    return results[0];
  }

  /** Ref names (full, `refs/...`) under `prefix`, e.g. `refs/heads/slipway/`. */
  async listRefs(prefix: string): Promise<string[]> {
    const names = await git.listRefs({ fs, gitdir: this.gitdir, filepath: prefix.replace(/\/$/, '') });
    return names.map((n) => `${prefix.replace(/\/$/, '')}/${n}`);
  }

  /**
   * Move `ref` from `expected` (undefined: the ref must not exist) to `next`, or to nothing when `next` is
   * undefined. Returns false, changing nothing, when the ref is not at `expected` any more.
   */
  async compareAndSwap(ref: string, expected: string | undefined, next: string | undefined): Promise<boolean> {
    const refPath = join(this.gitdir, ref);
    const lockPath = `${refPath}.lock`;
    fs.mkdirSync(join(refPath, '..'), { recursive: true });
    let fd = await this.lock(lockPath);
    try {
      const current = await this.resolve(ref);
      if (current !== expected) return false;
      if (next === undefined) {
        await git.deleteRef({ fs, gitdir: this.gitdir, ref });
        return true;
      }
      fs.writeSync(fd, `${next}\n`);
      fs.closeSync(fd);
      fd = -1;
      fs.renameSync(lockPath, refPath);
      return true;
    } finally {
      if (fd >= 0) fs.closeSync(fd);
      fs.rmSync(lockPath, { force: true });
    }
  }

  /**
   * Take `<ref>.lock` the way git does; while another writer (Slipway or git) holds it, wait for it like
   * git's core.filesRefLockTimeout, then give up with the lock's path so a person can remove a stale one.
   */
  private async lock(lockPath: string, timeoutMs = 2000): Promise<number> {
    const started = Date.now();
    for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
      try {
        return fs.openSync(lockPath, 'wx');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (Date.now() - started > timeoutMs) {
          throw new SlipwayError('REF_LOCKED', `${lockPath} is held by another git process; if none is running, remove that file and try again`, 'waiting', {
            lock: lockPath,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** The branch HEAD points at, when the repository has a working tree. */
  async checkedOutBranch(): Promise<string | undefined> {
    if (!this.worktree) return undefined;
    const branch = await git.currentBranch({ fs, gitdir: this.gitdir, fullname: true });
    return branch ?? undefined;
  }

  /**
   * After `branch` moved from `from` to `to` underneath a working tree that has it checked out, bring
   * the files that changed between the two commits up to date (only those, and only where the working
   * copy still matched `from`; a person's uncommitted edit is never overwritten).
   */
  async refreshWorktree(branch: string, from: string, to: string): Promise<string[]> {
    if (!this.worktree || (await this.checkedOutBranch()) !== branch) return [];
    const changed = await this.changedFiles(from, to);
    const clean: string[] = [];
    for (const file of changed) {
      const onDisk = join(this.worktree, file);
      const before = await this.blobOid(from, file);
      const present = fs.existsSync(onDisk);
      const current = present ? (await git.hashBlob({ object: fs.readFileSync(onDisk) })).oid : undefined;
      if (current === before) clean.push(file);
    }
    if (clean.length > 0) {
      await git.checkout({ fs, dir: this.worktree, gitdir: this.gitdir, ref: branch, filepaths: clean, force: true, noUpdateHead: true });
    }
    return changed.filter((f) => !clean.includes(f));
  }

  async changedFiles(from: string, to: string): Promise<string[]> {
    const out: string[] = [];
    await git.walk({
      fs,
      gitdir: this.gitdir,
      cache: this.cache,
      trees: [git.TREE({ ref: from }), git.TREE({ ref: to })],
      map: async (filepath, [a, b]) => {
        if (filepath === '.') return true;
        const [ta, tb] = [await a?.type(), await b?.type()];
        if (ta === 'tree' || tb === 'tree') {
          if ((await a?.oid()) === (await b?.oid())) return null;
          return true;
        }
        if ((await a?.oid()) !== (await b?.oid())) out.push(filepath);
        return true;
      },
    });
    return out;
  }
}
