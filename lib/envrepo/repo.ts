/**
 * Opening the environments repository: a local path (bare or with a working tree) or an http(s) URL
 * fetched into a cache under `$SLIPWAY_HOME/repos/<hash>`. Everything else reads git objects, never
 * a working tree.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { SlipwayError } from '../errors.js';
import { slipwayHome } from '../home.js';
import { objectStoreView, type ObjectFs } from './objectfs.js';
import { ObjectStore, type GitObject } from './objects.js';
import { parseTree, type TreeEntry } from './tree.js';

export type { TreeEntry } from './tree.js';

export interface EnvRepo {
  /** What the caller passed: a path or a URL. */
  source: string;
  /** The git directory (`.git`, or the repository itself when bare, or the cache for a URL). */
  gitdir: string;
  /** The working tree, when there is one. Never read for desired state. */
  dir?: string;
  /** Set for a repository opened by URL: reads resolve branch names against `refs/remotes/origin/*`. */
  url?: string;
  /** isomorphic-git's object cache (pack indexes); shared by every read of this repo. */
  cache: object;
  /** HTTP headers for a URL repository (e.g. `Authorization`), sent on every fetch. */
  headers?: Record<string, string>;
  /** Set on a per-operation view (see `snapshot`): the file system object reads go through. */
  objectFs?: ObjectFs;
  /** Set on a per-operation view (see `snapshot`): native-zlib object reads, packs listed once. */
  objectStore?: ObjectStore;
}

/**
 * The same repository, reading objects through a view that lists each object directory once (see
 * objectfs.ts). Take one per operation (a load, a diff), never keep it: it does not see new objects.
 */
export function snapshot(repo: EnvRepo): EnvRepo {
  return { ...repo, objectFs: objectStoreView(repo.gitdir), objectStore: new ObjectStore(repo.gitdir, repo.cache) };
}

/**
 * One object by id: read with native zlib (objects.ts) and, for anything that reader does not find,
 * through isomorphic-git, whose errors (NotFoundError, ...) then surface unchanged.
 */
async function readObject(repo: EnvRepo, oid: string): Promise<GitObject> {
  const found = await (repo.objectStore ?? new ObjectStore(repo.gitdir, repo.cache)).read(oid);
  if (found) return found;
  const { type, object } = await git.readObject({ fs: objectsFs(repo), gitdir: repo.gitdir, oid, format: 'content', cache: repo.cache });
  return { type: type as GitObject['type'], content: Buffer.from(object as Uint8Array) };
}

/** The fs isomorphic-git reads objects with: the operation's view, or node's fs. */
function objectsFs(repo: EnvRepo): typeof fs {
  return (repo.objectFs ?? fs) as typeof fs;
}

export function isRemoteUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** URL without credentials, so a token never ends up in a path or a message. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}

function isBareGitDir(path: string): boolean {
  return fs.existsSync(join(path, 'HEAD')) && fs.existsSync(join(path, 'objects')) && fs.existsSync(join(path, 'refs'));
}

/** `.git` may be a directory or (worktrees, submodules) a file `gitdir: <path>`. */
function gitDirOf(workTree: string): string | undefined {
  const dotGit = join(workTree, '.git');
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dotGit);
  } catch {
    return undefined;
  }
  if (stat.isDirectory()) return dotGit;
  const m = /^gitdir:\s*(.+)\s*$/m.exec(fs.readFileSync(dotGit, 'utf8'));
  return m ? resolve(workTree, m[1]!.trim()) : undefined;
}

/**
 * Open a repository from a path (the current directory by default; a parent directory holding `.git`
 * is found like git does) or an http(s) URL. A URL is cloned into the cache on first use and fetched
 * on every open unless `fetch: false`.
 */
export async function openRepo(
  opts: { repo?: string; env?: NodeJS.ProcessEnv; cwd?: string; fetch?: boolean; headers?: Record<string, string> } = {},
): Promise<EnvRepo> {
  const source = opts.repo ?? opts.cwd ?? process.cwd();
  if (isRemoteUrl(source)) return openRemote(source, opts.env ?? process.env, opts.fetch !== false, opts.headers ?? {});

  const path = resolve(opts.cwd ?? process.cwd(), source);
  if (!fs.existsSync(path)) {
    throw new SlipwayError('NOT_A_REPOSITORY', `${path} does not exist; pass --repo <path|url> of an environments repository`, 'stalling', { path });
  }
  const direct = gitDirOf(path);
  if (direct) return { source, gitdir: direct, dir: path, cache: {} };
  if (isBareGitDir(path)) return { source, gitdir: path, cache: {} };
  try {
    const root = await git.findRoot({ fs, filepath: path });
    const gitdir = gitDirOf(root);
    if (gitdir) return { source, gitdir, dir: root, cache: {} };
  } catch {
    // not inside a repository: fall through to the error below
  }
  throw new SlipwayError(
    'NOT_A_REPOSITORY',
    `${path} is not a git repository; run \`slipway init <dir>\` to create an environments repository, or pass --repo <path|url>`,
    'stalling',
    { path },
  );
}

/** `$SLIPWAY_HOME/repos/<sha256(url without credentials)[0:16]>`. */
export function remoteCacheDir(url: string, env: NodeJS.ProcessEnv = process.env): string {
  const hash = createHash('sha256').update(redactUrl(url)).digest('hex').slice(0, 16);
  return join(slipwayHome(env), 'repos', hash);
}

async function openRemote(url: string, env: NodeJS.ProcessEnv, doFetch: boolean, headers: Record<string, string>): Promise<EnvRepo> {
  const dir = remoteCacheDir(url, env);
  const gitdir = join(dir, '.git');
  const repo: EnvRepo = { source: redactUrl(url), gitdir, url, cache: {}, headers };
  try {
    if (!fs.existsSync(join(gitdir, 'HEAD'))) {
      fs.mkdirSync(dir, { recursive: true });
      await git.clone({ fs, http, headers, dir, gitdir, url, noCheckout: true, noTags: false, cache: repo.cache });
    } else if (doFetch) {
      await git.fetch({ fs, http, headers, dir, gitdir, url, remote: 'origin', tags: true, prune: true, singleBranch: false, cache: repo.cache });
    }
  } catch (err) {
    if (!fs.existsSync(join(gitdir, 'HEAD'))) fs.rmSync(dir, { recursive: true, force: true });
    throw new SlipwayError(
      'FETCH_FAILED',
      `cannot fetch ${redactUrl(url)}: ${(err as Error).message}`,
      'waiting',
      { url: redactUrl(url) },
      { cause: err },
    );
  }
  return repo;
}

/** Fetch a URL repository again (no-op for a local path). */
export async function fetchRepo(repo: EnvRepo): Promise<void> {
  if (!repo.url) return;
  const dir = resolve(repo.gitdir, '..');
  try {
    await git.fetch({ fs, http, headers: repo.headers ?? {}, dir, gitdir: repo.gitdir, url: repo.url, remote: 'origin', tags: true, prune: true, singleBranch: false, cache: repo.cache });
  } catch (err) {
    throw new SlipwayError('FETCH_FAILED', `cannot fetch ${repo.source}: ${(err as Error).message}`, 'waiting', { url: repo.source }, { cause: err });
  }
}

async function peelToCommit(repo: EnvRepo, oid: string, ref: string): Promise<string> {
  for (let depth = 0; depth < 10; depth++) {
    const { type, object } = await git.readObject({ fs, gitdir: repo.gitdir, oid, format: 'parsed', cache: repo.cache });
    if (type === 'commit') return oid;
    if (type === 'tag') {
      oid = (object as { object: string }).object;
      continue;
    }
    throw new SlipwayError('REF_NOT_FOUND', `${ref} points at a ${type}, not a commit`, 'stalling', { ref });
  }
  throw new SlipwayError('REF_NOT_FOUND', `${ref}: tag chain too deep`, 'stalling', { ref });
}

/**
 * Resolve a branch, tag, `HEAD`, or full/abbreviated commit id to a commit id. On a URL repository a
 * branch name means the fetched remote branch (`refs/remotes/origin/<name>`).
 */
export async function resolveCommit(opts: { repo: EnvRepo; ref?: string }): Promise<string> {
  const { repo } = opts;
  const ref = opts.ref ?? 'HEAD';
  // `main~2`, `HEAD^`, `v1^2`: resolve the base, then walk parents like git does.
  const suffix = /^(.+?)((?:~\d*|\^\d*)+)$/.exec(ref);
  if (suffix) {
    let oid = await resolveCommit({ repo, ref: suffix[1]! });
    for (const [, op, digits] of suffix[2]!.matchAll(/([~^])(\d*)/g)) {
      const n = digits === '' ? 1 : Number(digits);
      const steps = op === '~' ? Array.from({ length: n }, () => 0) : n === 0 ? [] : [n - 1];
      for (const parentIndex of steps) {
        const { commit } = await git.readCommit({ fs, gitdir: repo.gitdir, oid, cache: repo.cache });
        const parent = commit.parent[parentIndex];
        if (!parent) throw new SlipwayError('REF_NOT_FOUND', `${ref}: commit ${oid.slice(0, 12)} has no parent ${parentIndex + 1}`, 'stalling', { ref, repo: repo.source });
        oid = parent;
      }
    }
    return oid;
  }
  const candidates = repo.url
    ? ref === 'HEAD'
      ? ['refs/remotes/origin/HEAD', 'HEAD']
      : [`refs/remotes/origin/${ref}`, ref]
    : [ref];
  for (const candidate of candidates) {
    try {
      const oid = await git.resolveRef({ fs, gitdir: repo.gitdir, ref: candidate });
      return await peelToCommit(repo, oid, ref);
    } catch (err) {
      if (err instanceof SlipwayError) throw err;
    }
  }
  if (/^[0-9a-f]{4,40}$/i.test(ref)) {
    try {
      const oid = await git.expandOid({ fs, gitdir: repo.gitdir, oid: ref.toLowerCase(), cache: repo.cache });
      return await peelToCommit(repo, oid, ref);
    } catch (err) {
      if (err instanceof SlipwayError) throw err;
    }
  }
  throw new SlipwayError('REF_NOT_FOUND', `${ref} is not a branch, tag or commit of ${repo.source}`, 'stalling', { ref, repo: repo.source });
}

/**
 * Trees by id, as bytes and (once asked for) parsed. A tree id fixes its content, so an entry never goes
 * stale and may be shared across repositories. Bounded by bytes held, least recently used out first.
 * A controller diffs last-applied → new head on every sync, so the `from` side is usually here already.
 */
const MAX_CACHED_TREE_BYTES = 64 * 1024 * 1024;
interface CachedTree {
  raw: Buffer;
  entries?: readonly TreeEntry[];
  bytes: number;
}
const treeCache = new Map<string, CachedTree>();
let cachedTreeBytes = 0;
const treeStats = { read: 0, cached: 0 };

export function clearTreeCache(): void {
  treeCache.clear();
  cachedTreeBytes = 0;
}

/** Trees read from objects vs served from the cache since the process started. */
export function treeCacheStats(): { read: number; cached: number } {
  return { ...treeStats };
}

function remember(oid: string, tree: CachedTree): void {
  const old = treeCache.get(oid);
  if (old) cachedTreeBytes -= old.bytes;
  treeCache.delete(oid);
  if (tree.bytes > MAX_CACHED_TREE_BYTES / 4) return;
  treeCache.set(oid, tree);
  cachedTreeBytes += tree.bytes;
  while (cachedTreeBytes > MAX_CACHED_TREE_BYTES) {
    const [oldest, entry] = treeCache.entries().next().value as [string, CachedTree];
    treeCache.delete(oldest);
    cachedTreeBytes -= entry.bytes;
  }
}

async function cachedTree(repo: EnvRepo, oid: string): Promise<CachedTree> {
  const hit = treeCache.get(oid);
  if (hit) {
    treeStats.cached++;
    treeCache.delete(oid);
    treeCache.set(oid, hit);
    return hit;
  }
  treeStats.read++;
  const { type, content: raw } = await readObject(repo, oid);
  if (type !== 'tree') throw new SlipwayError('NOT_A_TREE', `object ${oid} is a ${type}, not a tree`, 'generic', { oid });
  const tree: CachedTree = { raw, bytes: raw.length };
  remember(oid, tree);
  return tree;
}

/** The bytes of a tree object (see tree.ts for its format). */
export async function readRawTree(repo: EnvRepo, oid: string): Promise<Buffer> {
  return (await cachedTree(repo, oid)).raw;
}

export async function readTreeEntries(repo: EnvRepo, oid: string): Promise<readonly TreeEntry[]> {
  const tree = await cachedTree(repo, oid);
  if (!tree.entries) {
    tree.entries = Object.freeze(parseTree(tree.raw));
    // Parsed entries take about four times the bytes of the raw tree.
    remember(oid, { ...tree, bytes: tree.raw.length * 5 });
  }
  return tree.entries;
}

export async function readBlobText(repo: EnvRepo, oid: string): Promise<string> {
  const { type, content } = await readObject(repo, oid);
  if (type !== 'blob') throw new SlipwayError('NOT_A_BLOB', `object ${oid} is a ${type}, not a file`, 'generic', { oid });
  return content.toString('utf8');
}

export async function commitTree(repo: EnvRepo, commit: string): Promise<string> {
  const { type, content } = await readObject(repo, commit);
  // A commit object starts with `tree <id>\n` (git's commit format); the rest is not needed here.
  const tree = type === 'commit' ? /^tree ([0-9a-f]{40})\n/.exec(content.toString('latin1', 0, 46))?.[1] : undefined;
  if (!tree) throw new SlipwayError('NOT_A_COMMIT', `object ${commit} is a ${type}${type === 'commit' ? ' without a tree line' : ''}, not a commit`, 'generic', { oid: commit });
  return tree;
}

/** The text of `path` at `commit`, or undefined when the commit has no such file. */
export async function readTextFile(opts: { repo: EnvRepo; commit: string; path: string }): Promise<string | undefined> {
  const { repo } = opts;
  let oid = await commitTree(repo, opts.commit);
  const parts = opts.path.split('/').filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const entries = await readTreeEntries(repo, oid);
    const entry = entries.find((e) => e.path === parts[i]);
    if (!entry) return undefined;
    const last = i === parts.length - 1;
    if (last !== (entry.type === 'blob')) return undefined;
    oid = entry.oid;
  }
  return readBlobText(repo, oid);
}
