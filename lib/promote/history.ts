/**
 * The promotion history of services, read from git alone: walk main's first-parent line newest-first and
 * report every commit that changed `<env>/services/<service>.yaml` — which digest it set, who merged it
 * and when, who proposed and approved it, which source commit built it, and whether it was a rollback or
 * a freeze override. Works for Slipway merges, merges a person made with `git merge`, reverts, and hand
 * edits alike, because it reads the files and the trailers, not Slipway's own records.
 */
import { readDigest } from '../bump/index.js';
import { parseTrailers, servicePath, TRAILER, trailer, trailerAll, type Repo, type Trailers } from '../gitprovider/index.js';

export type HistoryKind = 'promotion' | 'rollback' | 'edit' | 'created' | 'removed';

export interface HistoryEntry {
  commit: string;
  at: string;
  environment: string;
  service: string;
  kind: HistoryKind;
  digest?: string;
  previousDigest?: string;
  /** Who made the commit on main (the merger, for a merge). */
  by: string;
  proposedBy?: string;
  approvedBy: string[];
  sourceCommit?: string;
  sourceRepo?: string;
  override?: string;
  rollback?: string;
  subject: string;
}

export interface HistoryQuery {
  environments: string[];
  service?: string;
  /** Stop after this many entries (newest first). */
  limit?: number;
  /** Stop after walking this many commits of main. */
  maxCommits?: number;
}

export async function promotionHistory(repo: Repo, main: string, query: HistoryQuery): Promise<HistoryEntry[]> {
  const limit = query.limit ?? 50;
  const maxCommits = query.maxCommits ?? 100_000;
  const out: HistoryEntry[] = [];
  let oid: string | undefined = main;
  for (let walked = 0; oid && walked < maxCommits && out.length < limit; walked++) {
    const commit = await repo.readCommit(oid);
    const parent = commit.parent[0];
    const changed = await changedServices(repo, oid, parent, query);
    if (changed.length > 0) {
      const own = parseTrailers(commit.message);
      // A merge without Slipway's trailers (a person's `git merge`): the facts are on the branch it merged.
      const merged = commit.parent[1] ? await branchFacts(repo, commit.parent[1]) : undefined;
      const proposal = trailer(own, TRAILER.image) ? own : merged?.trailers;
      const proposer = merged?.author ?? (trailer(own, TRAILER.image) ? commit.author.name : undefined);
      const approvals = [...trailerAll(own, TRAILER.approvedBy), ...(merged?.approvals ?? [])].map((a) => a.replace(/\s*<[^>]*>$/, ''));
      const subject = commit.message.split('\n')[0] ?? '';
      for (const { environment, service, before, after } of changed) {
        const rollback = trailer(own, TRAILER.rollback) ?? (proposal ? trailer(proposal, TRAILER.rollback) : undefined) ?? (/^Revert\b/.test(subject) ? subject : undefined);
        const kind: HistoryKind = after === undefined ? 'removed' : rollback ? 'rollback' : proposal ? (before === undefined ? 'created' : 'promotion') : before === undefined ? 'created' : 'edit';
        out.push({
          commit: oid,
          at: new Date(commit.committer.timestamp * 1000).toISOString(),
          environment,
          service,
          kind,
          digest: after,
          previousDigest: before,
          by: commit.author.name,
          proposedBy: proposer,
          approvedBy: [...new Set(approvals)],
          sourceCommit: trailer(own, TRAILER.sourceCommit) ?? (proposal ? trailer(proposal, TRAILER.sourceCommit) : undefined),
          sourceRepo: proposal ? trailer(proposal, TRAILER.sourceRepo) : undefined,
          override: trailer(own, TRAILER.freezeOverride),
          rollback,
          subject,
        });
      }
    }
    oid = parent;
  }
  return out.slice(0, limit);
}

interface Changed {
  environment: string;
  service: string;
  before?: string;
  after?: string;
}

async function changedServices(repo: Repo, commit: string, parent: string | undefined, query: HistoryQuery): Promise<Changed[]> {
  const out: Changed[] = [];
  for (const environment of query.environments) {
    const dir = `${environment}/services`;
    const [now, then] = [await repo.entryAt(commit, dir), parent ? await repo.entryAt(parent, dir) : undefined];
    if (now?.oid === then?.oid) continue;
    const names = query.service
      ? [query.service]
      : [...new Set([...(await repo.listDir(commit, dir)), ...(parent ? await repo.listDir(parent, dir) : [])])].filter((n) => n.endsWith('.yaml')).map((n) => n.slice(0, -5));
    for (const service of names) {
      const path = servicePath(environment, service);
      const [a, b] = [parent ? await repo.blobOid(parent, path) : undefined, await repo.blobOid(commit, path)];
      if (a === b) continue;
      const digestAt = async (c: string | undefined) => {
        const text = c ? await repo.readFile(c, path) : undefined;
        try {
          return text === undefined ? undefined : readDigest(text, path);
        } catch {
          return undefined;
        }
      };
      const [before, after] = [await digestAt(parent), await digestAt(commit)];
      out.push({ environment, service, before, after });
    }
  }
  return out;
}

/** What a merged proposal branch says: its proposal commit (trailers, author) and the approvals committed on top of it. */
async function branchFacts(repo: Repo, head: string): Promise<{ trailers: Trailers; author: string; approvals: string[] } | undefined> {
  const approvals: string[] = [];
  let oid: string | undefined = head;
  for (let i = 0; oid && i < 100; i++) {
    const c = await repo.readCommit(oid);
    const t = parseTrailers(c.message);
    if (trailer(t, TRAILER.image)) return { trailers: t, author: c.author.name, approvals };
    approvals.push(...trailerAll(t, TRAILER.approvedBy));
    oid = c.parent[0];
  }
  return undefined;
}
