/**
 * The environments repository as the controller follows it, through lib/envrepo (git objects via
 * isomorphic-git, never a working tree), so what is applied is exactly a commit of main.
 *
 * - `head()` is one ref lookup for a repository on disk; for an http(s) remote it fetches first.
 * - `load(commit)` validates every file of the commit (lib/envrepo caches parsed files by blob id, so the
 *   next commit re-parses only what changed while the whole commit is still checked).
 * - `diff(from, to)` compares tree ids and descends only into subtrees that differ.
 */
import * as fs from 'node:fs';
import git from 'isomorphic-git';
import { diffCommits, fetchRepo, loadDesiredState, openRepo, resolveRef, isRemoteUrl, type EnvRepo } from '../../lib/envrepo/index.js';
import { SlipwayError } from '../../lib/errors.js';
import type { CommitDiff, LoadResult } from '../../lib/envrepo/types.js';
import type { EnvironmentSource } from '../reconcile/types.js';

const MAIN = 'main';
/** How far back `commitsTouching` looks for the commits that brought a change. */
const HISTORY_DEPTH = 200;

export interface GitSourceOptions {
  /** A path to a repository on disk (bare or with a working tree) or an http(s) URL. */
  location: string;
  branch?: string;
}

export function isRemote(location: string): boolean {
  return isRemoteUrl(location);
}

export class GitEnvironmentSource implements EnvironmentSource {
  readonly location: string;
  private readonly branch: string;
  private repo?: EnvRepo;
  private opened = false;

  constructor(options: GitSourceOptions) {
    this.location = options.location;
    this.branch = options.branch ?? MAIN;
  }

  private async open(): Promise<EnvRepo> {
    if (!this.repo) this.repo = await openRepo({ repo: this.location, fetch: false });
    return this.repo;
  }

  /** The repository as lib/envrepo opened it (for the rollback port, which writes to it). */
  async envRepo(): Promise<EnvRepo> {
    return this.open();
  }

  async head(): Promise<string> {
    try {
      const repo = await this.open();
      // A remote was cloned by the first open; every later head() fetches.
      if (repo.url && this.opened) await fetchRepo(repo);
      this.opened = true;
      return await resolveRef({ repo, ref: this.branch });
    } catch (err) {
      if (err instanceof SlipwayError) throw err;
      throw new SlipwayError('SOURCE_UNREACHABLE', `cannot read ${this.branch} of ${this.location}: ${(err as Error).message}`, 'waiting', {}, { cause: err });
    }
  }

  async load(commit: string): Promise<LoadResult> {
    return loadDesiredState({ repo: await this.open(), commit });
  }

  async diff(from: string | undefined, to: string): Promise<CommitDiff> {
    return diffCommits({ repo: await this.open(), from, to });
  }

  async commitsTouching(path: string, from: string | undefined, to: string, limit = HISTORY_DEPTH): Promise<{ oid: string; message: string }[]> {
    const repo = await this.open();
    const out: { oid: string; message: string }[] = [];
    const blobAt = async (commit: string | undefined): Promise<string | undefined> => {
      if (!commit) return undefined;
      try {
        return (await git.readObject({ fs, gitdir: repo.gitdir, oid: commit, filepath: path, format: 'deflated', cache: repo.cache })).oid;
      } catch {
        return undefined;
      }
    };
    // First-parent walk, newest first, stopping at `from` or once `limit` commits were found.
    let oid: string | undefined = to;
    let blob = await blobAt(oid);
    for (let depth = 0; oid && oid !== from && depth < HISTORY_DEPTH && out.length < limit; depth++) {
      const { commit } = await git.readCommit({ fs, gitdir: repo.gitdir, oid, cache: repo.cache });
      const parent: string | undefined = commit.parent[0];
      const parentBlob = await blobAt(parent);
      if (blob !== parentBlob) out.push({ oid, message: commit.message });
      oid = parent;
      blob = parentBlob;
    }
    return out;
  }
}
