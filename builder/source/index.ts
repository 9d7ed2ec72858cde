/**
 * The service repository at a commit, through the git CLI: resolve the commit (and its tree, time,
 * branch and source URL), read a file at the commit, and check the commit out into a clean directory
 * with a private index, so the user's working tree and index are never touched.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { SlipwayError } from '../../lib/errors.js';

const execFileAsync = promisify(execFile);

export interface SourceCommit {
  repoDir: string;
  gitDir: string;
  /** Full commit sha. */
  commit: string;
  /** Tree id of the commit. */
  tree: string;
  /** Committer time, seconds since the epoch. */
  commitTime: number;
  /** The branch being built: given, or the one checked out / pointing at the commit; undefined when unknown. */
  branch?: string;
  /** `org.opencontainers.image.source`: the origin remote (credentials removed), else file://<repo>. */
  sourceUrl: string;
}

interface GitResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** git with a clean environment: no GIT_DIR & co leaking in from the caller. */
async function git(cwd: string, args: string[], extraEnv: Record<string, string> = {}): Promise<GitResult> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir(), GIT_CONFIG_NOSYSTEM: '1', LC_ALL: 'C', ...extraEnv };
  try {
    const { stdout, stderr } = await execFileAsync('git', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
    return { ok: true, stdout, stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: string | number };
    if (e.code === 'ENOENT' && e.stdout === undefined) {
      throw new SlipwayError('GIT_MISSING', 'the git command is not installed or not on PATH', 'stalling');
    }
    return { ok: false, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

export async function resolveSource(opts: { repoDir: string; rev?: string; branch?: string }): Promise<SourceCommit> {
  const repoDir = resolve(opts.repoDir);
  const rev = opts.rev ?? 'HEAD';
  // One git call for the git dir and what HEAD is (a branch or detached), one for the commit itself.
  const head = await git(repoDir, ['rev-parse', '--absolute-git-dir', 'HEAD', '--symbolic-full-name', 'HEAD']);
  const [gitDir, headCommit, headRef] = head.stdout.split('\n').map((l) => l.trim());
  if (!gitDir || (!head.ok && !/unknown revision|ambiguous argument 'HEAD'/.test(head.stderr))) {
    throw new SlipwayError('NOT_A_REPOSITORY', `${repoDir} is not a git repository (give the service repository with --repo)`, 'stalling', { repoDir });
  }
  if (rev.startsWith('-')) throw new SlipwayError('COMMIT_NOT_FOUND', `"${rev}" is not a commit`, 'stalling', { rev });
  const info = await git(repoDir, ['log', '-1', '--no-walk', '--format=%H %T %ct', `${rev}^{commit}`, '--']);
  const [commit, tree, time] = info.stdout.trim().split(' ');
  if (!info.ok || !commit || !tree) {
    throw new SlipwayError('COMMIT_NOT_FOUND', `commit "${rev}" does not exist in ${repoDir} (check the sha, or fetch it first)`, 'stalling', { rev, repoDir });
  }
  let branch = opts.branch;
  if (!branch && headRef?.startsWith('refs/heads/') && headCommit === commit) branch = headRef.slice('refs/heads/'.length);
  if (!branch) {
    const pointing = await git(repoDir, ['branch', '--points-at', commit, '--format=%(refname:short)']);
    const names = pointing.stdout.split('\n').map((n) => n.trim()).filter(Boolean);
    if (names.length === 1) branch = names[0];
  }
  const origin = await git(repoDir, ['config', '--get', 'remote.origin.url']);
  const sourceUrl = origin.ok && origin.stdout.trim() ? withoutCredentials(origin.stdout.trim()) : `file://${repoDir}`;
  return { repoDir, gitDir, commit, tree, commitTime: Number(time), ...(branch ? { branch } : {}), sourceUrl };
}

function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '';
      u.password = '';
    }
    return u.toString();
  } catch {
    return url; // scp-like `git@host:org/repo.git` or a path
  }
}

/** The bytes of `path` at the commit, or undefined when the commit has no such file. */
export async function readFileAtCommit(source: SourceCommit, path: string): Promise<string | undefined> {
  const res = await git(source.repoDir, ['cat-file', 'blob', `${source.commit}:${path}`]);
  return res.ok ? res.stdout : undefined;
}

/** Writes the commit's files into `dir` (created, must be empty or absent) using a private index. */
export async function checkoutCommit(source: SourceCommit, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const scratch = await mkdtemp(join(tmpdir(), 'slipway-index-'));
  try {
    const env = { GIT_INDEX_FILE: join(scratch, 'index') };
    const base = [`--git-dir=${source.gitDir}`, `--work-tree=${dir}`];
    for (const args of [['read-tree', source.commit], ['checkout-index', '--all', '--force']]) {
      const res = await git(dir, [...base, ...args], env);
      if (!res.ok) {
        throw new SlipwayError('CHECKOUT_FAILED', `could not check out ${source.commit.slice(0, 12)} into ${dir}: ${res.stderr.trim()}`, 'generic', { commit: source.commit });
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
