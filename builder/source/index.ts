/**
 * The service repository at a commit, through the git CLI: resolve the commit (and its tree, time,
 * branch and source URL), read a file at the commit, and check the commit out into a clean directory
 * with a private index, so the user's working tree and index are never touched.
 */
import { execFile, spawn } from 'node:child_process';
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
function gitEnv(extraEnv: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir(), GIT_CONFIG_NOSYSTEM: '1', LC_ALL: 'C', ...extraEnv };
}

async function git(cwd: string, args: string[], extraEnv: Record<string, string> = {}): Promise<GitResult> {
  const env = gitEnv(extraEnv);
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

export interface ResolveSourceOptions {
  repoDir: string;
  rev?: string;
  branch?: string;
}

export async function resolveSource(opts: ResolveSourceOptions): Promise<SourceCommit> {
  return (await resolveSourceWithFile(opts)).source;
}

/**
 * The commit and, when `path` is given, that file's text at the commit (undefined when the commit has no
 * such file). The git calls that do not depend on each other run side by side, and the commit and the
 * file come from one `git cat-file --batch`, so the file is read from exactly the commit resolved.
 */
export async function resolveSourceWithFile(opts: ResolveSourceOptions, path?: string): Promise<{ source: SourceCommit; file: string | undefined }> {
  const repoDir = resolve(opts.repoDir);
  const rev = opts.rev ?? 'HEAD';
  if (rev.startsWith('-') || /[\n\r\0]/.test(rev)) throw new SlipwayError('COMMIT_NOT_FOUND', `"${rev}" is not a commit`, 'stalling', { rev });
  const [head, objects, origin] = await Promise.all([
    // The git dir and what HEAD is (a branch or detached).
    git(repoDir, ['rev-parse', '--absolute-git-dir', 'HEAD', '--symbolic-full-name', 'HEAD']),
    readCommitAndFile(repoDir, rev, path),
    git(repoDir, ['config', '--get', 'remote.origin.url']),
  ]);
  const [gitDir, headCommit, headRef] = head.stdout.split('\n').map((l) => l.trim());
  if (!gitDir || (!head.ok && !/unknown revision|ambiguous argument 'HEAD'/.test(head.stderr))) {
    throw new SlipwayError('NOT_A_REPOSITORY', `${repoDir} is not a git repository (give the service repository with --repo)`, 'stalling', { repoDir });
  }
  if (!objects) {
    throw new SlipwayError('COMMIT_NOT_FOUND', `commit "${rev}" does not exist in ${repoDir} (check the sha, or fetch it first)`, 'stalling', { rev, repoDir });
  }
  const { commit, tree, commitTime, file } = objects;
  let branch = opts.branch;
  if (!branch && headRef?.startsWith('refs/heads/') && headCommit === commit) branch = headRef.slice('refs/heads/'.length);
  if (!branch) {
    const pointing = await git(repoDir, ['branch', '--points-at', commit, '--format=%(refname:short)']);
    const names = pointing.stdout.split('\n').map((n) => n.trim()).filter(Boolean);
    if (names.length === 1) branch = names[0];
  }
  const sourceUrl = origin.ok && origin.stdout.trim() ? withoutCredentials(origin.stdout.trim()) : `file://${repoDir}`;
  return { source: { repoDir, gitDir, commit, tree, commitTime, ...(branch ? { branch } : {}), sourceUrl }, file };
}

interface CommitObjects {
  commit: string;
  tree: string;
  commitTime: number;
  file: string | undefined;
}

/**
 * One `git cat-file --batch`: `<rev>^{commit}` first, then `<sha>:<path>` with the sha it answered.
 * Undefined when the revision is not a commit of the repository (or it is not a repository).
 */
async function readCommitAndFile(repoDir: string, rev: string, path: string | undefined): Promise<CommitObjects | undefined> {
  const child = spawn('git', ['cat-file', '--batch'], { cwd: repoDir, env: gitEnv(), stdio: ['pipe', 'pipe', 'ignore'] });
  let buffered = Buffer.alloc(0);
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  child.stdout.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    notify();
  });
  child.stdout.on('end', () => {
    ended = true;
    notify();
  });
  child.on('error', (err) => {
    failure = err;
    ended = true;
    notify();
  });
  child.stdin.on('error', () => undefined); // git exits early outside a repository; the read below reports it
  const next = async (): Promise<{ oid: string; type: string; body?: Buffer } | undefined> => {
    for (;;) {
      const nl = buffered.indexOf(10);
      if (nl >= 0) {
        const header = buffered.subarray(0, nl).toString('utf8').split(' ');
        if (header.length !== 3) {
          buffered = buffered.subarray(nl + 1);
          return { oid: header[0] ?? '', type: header[header.length - 1] ?? 'missing' };
        }
        const size = Number(header[2]);
        if (buffered.length >= nl + 1 + size + 1) {
          const body = Buffer.from(buffered.subarray(nl + 1, nl + 1 + size));
          buffered = buffered.subarray(nl + 1 + size + 1);
          return { oid: header[0]!, type: header[1]!, body };
        }
      }
      if (ended) return undefined;
      await new Promise<void>((r) => (wake = r));
    }
  };
  try {
    child.stdin.write(`${rev}^{commit}\n`);
    const commitObject = await next();
    // A spawn failure (no git, no such directory) is reported by the rev-parse run beside this one.
    if (failure) return undefined;
    if (commitObject?.type !== 'commit' || !commitObject.body) return undefined;
    const commit = commitObject.oid;
    const text = commitObject.body.toString('utf8');
    const tree = /^tree ([0-9a-f]+)$/m.exec(text)?.[1];
    const time = /^committer .* (\d+) [+-]\d{4}$/m.exec(text)?.[1];
    if (!tree || !time) return undefined;
    let file: string | undefined;
    if (path !== undefined) {
      child.stdin.write(`${commit}:${path}\n`);
      const blob = await next();
      if (blob?.type === 'blob' && blob.body) file = blob.body.toString('utf8');
    }
    return { commit, tree, commitTime: Number(time), file };
  } finally {
    child.stdin.end();
    if (child.exitCode === null && child.signalCode === null) child.kill();
  }
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
