/**
 * The rollback: a revert commit of the change that introduced a bad digest, on the environments repo's main
 * branch, with the digest quarantined in the same commit.
 *
 * Git-revert semantics: a three-way merge of base = the introducing commit, ours = the branch tip,
 * theirs = the introducing commit's first parent (what `git revert -m 1 <sha>` does). Later unrelated
 * commits stay. When that does not apply cleanly (a later change touched the same lines) or the commit
 * changed more than this service, the previous digest is written back explicitly instead.
 *
 * Publishing moves the branch only from the tip the commit was built on (git's lock-file protocol); a moved
 * branch means build again on the new tip. Never a force.
 */
import { join } from 'node:path';
import type * as NodeFs from 'node:fs';
import git, { Errors } from 'isomorphic-git';
import { SlipwayError } from '../errors.js';
import type { RevertRequest, RevertResult, RollbackPort } from '../gitprovider/types.js';
import { rollbackMessage } from './message.js';
import { compareAndSwapRef } from './refs.js';
import { addQuarantineEntry, digestOf, writeDigest } from './yaml.js';

export const QUARANTINE_FILE = 'quarantine.yaml';

export function serviceFile(environment: string, service: string): string {
  return `${environment}/services/${service}.yaml`;
}

export interface Identity {
  name: string;
  email: string;
}

export interface LocalRollbackOptions {
  fs: typeof NodeFs;
  /** Working tree of the environments repository; omit for a bare repository (then `gitdir` is required). */
  dir?: string;
  gitdir?: string;
  branch?: string;
  now?: () => Date;
  /** Author and committer of rollback commits. */
  identity?: Identity;
  /** Builds of the commit when the branch keeps moving under us. */
  attempts?: number;
  /** Called after the commit is written and before the branch moves (tests move the branch here). */
  beforePublish?: (commit: string, attempt: number) => Promise<void>;
  /** How far back the first-parent history is searched for the introducing commit. */
  maxDepth?: number;
}

export interface LocalRevertResult extends RevertResult {
  /** The digest was not running any more (someone rolled it back already): nothing was written. */
  alreadyRolledBack: boolean;
  /** The digest was added to quarantine.yaml by this commit. */
  quarantined: boolean;
  message: string;
  /** Builds needed (more than 1 when the branch moved meanwhile). */
  attempts: number;
}

export interface LocalRollback extends RollbackPort {
  revert(request: RevertRequest): Promise<LocalRevertResult>;
}

export const DEFAULT_IDENTITY: Identity = { name: 'Slipway', email: 'slipway@localhost' };

export function createLocalRollback(options: LocalRollbackOptions): LocalRollback {
  const { fs, dir } = options;
  const gitdir = options.gitdir ?? (dir ? join(dir, '.git') : undefined);
  if (!gitdir) throw new SlipwayError('NO_REPOSITORY', 'createLocalRollback needs dir or gitdir', 'stalling');
  const branchRef = `refs/heads/${options.branch ?? 'main'}`;
  const now = options.now ?? (() => new Date());
  const identity = options.identity ?? DEFAULT_IDENTITY;
  const attempts = Math.max(1, options.attempts ?? 5);
  const repo: Repo = { fs, gitdir, maxDepth: options.maxDepth ?? 10_000 };

  return {
    async revert(request) {
      validateRequest(request);
      for (let attempt = 1; attempt <= attempts; attempt++) {
        const head = await resolveBranch(repo, branchRef);
        const plan = await planRevert(repo, head, request, now());
        if (plan.kind === 'already') {
          return { commit: head, revertedCommit: plan.revertedCommit, restoredDigest: plan.currentDigest, explicit: false, alreadyRolledBack: true, quarantined: false, message: '', attempts: attempt };
        }
        const worktree = dir ? await checkedOutHere(repo, dir, branchRef) : false;
        if (worktree) await assertClean(repo, dir!, head, plan.changedPaths);
        const when = now();
        const signature = { ...identity, timestamp: Math.floor(when.getTime() / 1000), timezoneOffset: 0 };
        const commit = await git.writeCommit({ fs, gitdir, commit: { tree: plan.tree, parent: [head], author: signature, committer: signature, message: plan.message } });
        await options.beforePublish?.(commit, attempt);
        const swap = await compareAndSwapRef({ fs, gitdir, ref: branchRef, expected: head, value: commit });
        if (swap.ok) {
          if (worktree) await git.checkout({ fs, dir: dir!, gitdir, ref: branchRef, filepaths: plan.changedPaths, force: true });
          return {
            commit,
            revertedCommit: plan.revertedCommit,
            restoredDigest: plan.restoredDigest,
            explicit: plan.explicitBecause !== undefined,
            alreadyRolledBack: false,
            quarantined: plan.quarantined,
            message: plan.message,
            attempts: attempt,
          };
        }
        if (swap.reason === 'locked') await new Promise((r) => setTimeout(r, 25 * attempt));
      }
      throw new SlipwayError(
        'BRANCH_MOVED',
        `${branchRef} kept moving (or stayed locked) during ${attempts} attempts to publish the rollback of ${request.environment}/${request.service}; retry`,
        'waiting',
        { ref: branchRef, attempts },
      );
    },
  };
}

function validateRequest(r: RevertRequest): void {
  if (!/^sha256:[a-f0-9]{64}$/.test(r.badDigest)) {
    throw new SlipwayError('BAD_DIGEST', `badDigest must be a full sha256: digest, got "${r.badDigest}"`, 'stalling', { field: 'badDigest' });
  }
  for (const field of ['environment', 'service', 'reason', 'actor'] as const) {
    if (!r[field] || !r[field].trim()) throw new SlipwayError('MISSING_FIELD', `a rollback needs ${field}`, 'stalling', { field });
  }
}

interface Repo {
  fs: typeof NodeFs;
  gitdir: string;
  maxDepth: number;
}

type Plan =
  | { kind: 'already'; revertedCommit: string; currentDigest: string }
  | {
      kind: 'commit';
      tree: string;
      message: string;
      revertedCommit: string;
      restoredDigest: string;
      explicitBecause?: string;
      quarantined: boolean;
      changedPaths: string[];
    };

async function planRevert(repo: Repo, head: string, request: RevertRequest, now: Date): Promise<Plan> {
  const { fs, gitdir } = repo;
  const path = serviceFile(request.environment, request.service);
  const headFile = await readFile(repo, head, path);
  if (!headFile) {
    throw new SlipwayError('NO_SERVICE', `${path} does not exist on the branch: there is no ${request.service} in ${request.environment} to roll back`, 'stalling', { file: path });
  }
  const currentDigest = digestOf(headFile.text, path);
  const found = await findIntroducingCommit(repo, head, path, request.badDigest);
  if (!found) {
    throw new SlipwayError('NOT_DEPLOYED', `${request.badDigest} was never the digest of ${path} on this branch; nothing to roll back`, 'stalling', {
      file: path,
      digest: request.badDigest,
    });
  }
  if (currentDigest !== request.badDigest) return { kind: 'already', revertedCommit: found.commit, currentDigest: currentDigest ?? '' };
  if (!found.previousDigest) {
    throw new SlipwayError(
      'NO_PREVIOUS_DIGEST',
      `${path} was created with ${request.badDigest} in ${found.commit.slice(0, 12)}: there is no earlier digest to roll back to; remove the service file to take it away`,
      'stalling',
      { file: path, commit: found.commit },
    );
  }
  const previous = found.previousDigest;
  const headCommit = (await git.readCommit({ fs, gitdir, oid: head })).commit;

  let tree: string | undefined;
  let explicitBecause: string | undefined;
  const touched = await changedFiles(repo, found.parentTree, found.tree);
  const others = touched.filter((p) => p !== path && p !== QUARANTINE_FILE);
  if (others.length > 0) {
    explicitBecause = `${found.commit.slice(0, 12)} also changed ${others.join(', ')}, which this rollback leaves alone`;
  } else {
    try {
      tree = await revertTree(repo, head, found.commit, found.parentTree);
      const after = await readFile(repo, tree, path);
      if (!after || digestOf(after.text, path) !== previous) {
        explicitBecause = `reverting ${found.commit.slice(0, 12)} did not restore ${previous}`;
        tree = undefined;
      }
    } catch (err) {
      if (!(err instanceof Errors.MergeConflictError) && !(err instanceof Errors.MergeNotSupportedError)) throw err;
      const files = err instanceof Errors.MergeConflictError ? err.data.filepaths.join(', ') : path;
      explicitBecause = `later changes conflict with it in ${files}`;
    }
  }
  if (!tree) {
    const text = writeDigest(headFile.text, previous, path);
    tree = await replaceFiles(repo, headCommit.tree, { [path]: await git.writeBlob({ fs, gitdir, blob: Buffer.from(text) }) });
  }

  let quarantined = false;
  if (request.quarantine) {
    const existing = await readFile(repo, tree, QUARANTINE_FILE);
    const { text, added } = addQuarantineEntry(
      existing?.text,
      { digest: request.badDigest, service: request.service, environment: request.environment, reason: oneLine(request.reason), at: now.toISOString() },
      QUARANTINE_FILE,
    );
    if (added) {
      tree = await replaceFiles(repo, tree, { [QUARANTINE_FILE]: await git.writeBlob({ fs, gitdir, blob: Buffer.from(text) }) });
      quarantined = true;
    }
  }

  const { commit: reverted } = await git.readCommit({ fs, gitdir, oid: found.commit });
  const message = rollbackMessage({
    environment: request.environment,
    service: request.service,
    revertedCommit: found.commit,
    revertedSubject: reverted.message.split('\n', 1)[0]!.trim(),
    badDigest: request.badDigest,
    restoredDigest: previous,
    reason: request.reason,
    summary: request.summary,
    actor: request.actor,
    explicitBecause,
    quarantined,
  });
  return {
    kind: 'commit',
    tree,
    message,
    revertedCommit: found.commit,
    restoredDigest: previous,
    explicitBecause,
    quarantined,
    changedPaths: await changedFiles(repo, headCommit.tree, tree),
  };
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

export interface IntroducingCommit {
  commit: string;
  tree: string;
  parentTree: string | undefined;
  /** The digest before it (undefined when the commit created the file). */
  previousDigest: string | undefined;
}

/** The newest first-parent commit at or before `head` that set `path`'s digest to `digest`. */
export async function findIntroducingCommit(repo: Repo, head: string, path: string, digest: string): Promise<IntroducingCommit | undefined> {
  const { fs, gitdir } = repo;
  let oid: string | undefined = head;
  let here = await readFile(repo, head, path);
  for (let depth = 0; oid && depth < repo.maxDepth; depth++) {
    const { commit } = await git.readCommit({ fs, gitdir, oid });
    const parent = commit.parent[0];
    const there = parent ? await readFile(repo, parent, path) : undefined;
    if (here?.oid !== there?.oid && here) {
      const hereDigest = digestOfSafe(here.text, path);
      const thereDigest = there ? digestOfSafe(there.text, path) : undefined;
      if (hereDigest === digest && thereDigest !== digest) {
        const parentTree = parent ? (await git.readCommit({ fs, gitdir, oid: parent })).commit.tree : undefined;
        return { commit: oid, tree: commit.tree, parentTree, previousDigest: thereDigest };
      }
    }
    oid = parent;
    here = there;
  }
  return undefined;
}

function digestOfSafe(text: string, path: string): string | undefined {
  try {
    return digestOf(text, path);
  } catch {
    return undefined;
  }
}

/** Three-way merge: base = the reverted commit, ours = head, theirs = the reverted commit's first parent. */
async function revertTree(repo: Repo, head: string, reverted: string, parentTree: string | undefined): Promise<string> {
  const { fs, gitdir } = repo;
  if (!parentTree) throw new Errors.MergeNotSupportedError();
  const helper = { name: 'Slipway', email: 'slipway@localhost', timestamp: 0, timezoneOffset: 0 };
  // Two unreferenced helper commits, both children of the reverted one: "ours" with head's tree, "theirs" with
  // the reverted commit's parent tree. Their merge base is the reverted commit itself (found in one step, not by
  // walking the history), so merging them is exactly the revert's three-way merge. git gc removes them.
  const child = (tree: string, message: string) =>
    git.writeCommit({ fs, gitdir, commit: { tree, parent: [reverted], author: helper, committer: helper, message } });
  const headTree = (await git.readCommit({ fs, gitdir, oid: head })).commit.tree;
  const ours = await child(headTree, 'slipway: branch tip to revert on\n');
  const inverse = await child(parentTree, 'slipway: inverse of a reverted commit\n');
  const result = await git.merge({ fs, gitdir, ours, theirs: inverse, fastForward: false, noUpdateBranch: true, abortOnConflict: true, author: helper, committer: helper });
  if (!result.tree) throw new Errors.MergeNotSupportedError();
  return result.tree;
}

async function readFile(repo: Repo, oid: string, filepath: string): Promise<{ oid: string; text: string } | undefined> {
  try {
    const { blob, oid: blobOid } = await git.readBlob({ fs: repo.fs, gitdir: repo.gitdir, oid, filepath });
    return { oid: blobOid, text: Buffer.from(blob).toString('utf8') };
  } catch (err) {
    if (err instanceof Errors.NotFoundError) return undefined;
    throw err;
  }
}

/** A new tree: `base` with the given paths set to blob oids (mode 100644). */
export async function replaceFiles(repo: Repo, base: string | undefined, files: Record<string, string>): Promise<string> {
  const { fs, gitdir } = repo;
  const entries = base ? (await git.readTree({ fs, gitdir, oid: base })).tree : [];
  const byHead = new Map<string, Record<string, string>>();
  for (const [path, oid] of Object.entries(files)) {
    const [first, ...rest] = path.split('/');
    if (rest.length === 0) {
      const i = entries.findIndex((e) => e.path === first);
      const entry = { mode: '100644', path: first!, oid, type: 'blob' as const };
      if (i >= 0) entries[i] = entry;
      else entries.push(entry);
    } else {
      const sub = byHead.get(first!) ?? {};
      sub[rest.join('/')] = oid;
      byHead.set(first!, sub);
    }
  }
  for (const [name, sub] of byHead) {
    const i = entries.findIndex((e) => e.path === name);
    const existing = i >= 0 && entries[i]!.type === 'tree' ? entries[i]!.oid : undefined;
    const entry = { mode: '040000', path: name, oid: await replaceFiles(repo, existing, sub), type: 'tree' as const };
    if (i >= 0) entries[i] = entry;
    else entries.push(entry);
  }
  return git.writeTree({ fs, gitdir, tree: entries });
}

/** Paths whose blobs differ between two trees (added, removed or modified). */
async function changedFiles(repo: Repo, a: string | undefined, b: string | undefined): Promise<string[]> {
  const { fs, gitdir } = repo;
  const out: string[] = [];
  const emptyTree = await git.writeTree({ fs, gitdir, tree: [] });
  await git.walk({
    fs,
    gitdir,
    trees: [git.TREE({ ref: a ?? emptyTree }), git.TREE({ ref: b ?? emptyTree })],
    map: async (filepath, [x, y]) => {
      if (filepath === '.') return true;
      const [xt, yt] = [await x?.type(), await y?.type()];
      if (xt === 'tree' || yt === 'tree') {
        if (xt === 'tree' && yt === 'tree' && (await x!.oid()) === (await y!.oid())) return null;
        if (xt !== 'blob' && yt !== 'blob') return true;
      }
      if ((await x?.oid()) !== (await y?.oid())) out.push(filepath);
      return true;
    },
  });
  return out.sort();
}

async function resolveBranch(repo: Repo, ref: string): Promise<string> {
  try {
    return await git.resolveRef({ fs: repo.fs, gitdir: repo.gitdir, ref });
  } catch {
    throw new SlipwayError('NO_BRANCH', `${ref} does not exist in ${repo.gitdir}`, 'stalling', { ref });
  }
}

async function checkedOutHere(repo: Repo, dir: string, ref: string): Promise<boolean> {
  const current = await git.currentBranch({ fs: repo.fs, dir, gitdir: repo.gitdir, fullname: true }).catch(() => undefined);
  return current === ref;
}

/** Like git revert: refuse rather than overwrite local changes to the files the commit changes. */
async function assertClean(repo: Repo, dir: string, head: string, paths: string[]): Promise<void> {
  if (paths.length === 0) return;
  const rows = await git.statusMatrix({ fs: repo.fs, dir, gitdir: repo.gitdir, ref: head, filepaths: paths });
  const dirty = rows.filter(([, h, w, s]) => !((h === 1 && w === 1 && s === 1) || (h === 0 && w === 0 && s === 0))).map(([f]) => f);
  if (dirty.length > 0) {
    throw new SlipwayError(
      'LOCAL_CHANGES',
      `local changes to ${dirty.join(', ')} in ${dir} would be overwritten by the rollback; commit or stash them, then roll back again`,
      'stalling',
      { files: dirty },
    );
  }
}

/** The digest a service runs at the tip of the branch (what `slipway rollback` rolls back by default). */
export async function currentDigest(args: { fs: typeof NodeFs; dir?: string; gitdir?: string; branch?: string; environment: string; service: string }): Promise<string> {
  const gitdir = args.gitdir ?? (args.dir ? join(args.dir, '.git') : undefined);
  if (!gitdir) throw new SlipwayError('NO_REPOSITORY', 'currentDigest needs dir or gitdir', 'stalling');
  const repo: Repo = { fs: args.fs, gitdir, maxDepth: 1 };
  const ref = `refs/heads/${args.branch ?? 'main'}`;
  const head = await resolveBranch(repo, ref);
  const path = serviceFile(args.environment, args.service);
  const file = await readFile(repo, head, path);
  if (!file) throw new SlipwayError('NO_SERVICE', `${path} does not exist on ${ref}: there is no ${args.service} in ${args.environment}`, 'stalling', { file: path });
  const digest = digestOf(file.text, path);
  if (!digest) throw new SlipwayError('NO_DIGEST', `${path}: spec.image.digest is missing`, 'stalling', { file: path, path: 'spec.image.digest' });
  return digest;
}
