/**
 * What changed between two commits of the environments repository, per environment and service.
 *
 * Git trees are content-addressed: a subtree whose id is the same on both sides holds the same files,
 * so the walk never opens it. The work done is proportional to the number of changed paths times their
 * depth, not to the size of the repository.
 */
import { commitTree, readRawTree, snapshot, type EnvRepo } from './repo.js';
import { diffRawTrees } from './tree.js';

const EMPTY = Buffer.alloc(0);
import type { CommitDiff, ServiceChange, ServiceChangeKind } from './types.js';

const SERVICE_FILE = /^([^/.][^/]*)\/services\/([^/]+)\.yaml$/;

export interface DiffStats {
  /** Trees read from the object store during the walk (root trees included). */
  treesRead: number;
}

export interface ChangedFile {
  path: string;
  kind: ServiceChangeKind;
}

/**
 * Changed blob paths between two trees, walking only subtrees whose ids differ. A path that is a file on
 * one side and a directory on the other shows up as removed + added.
 */
export async function diffTrees(repo: EnvRepo, fromTree: string | undefined, toTree: string | undefined, stats: DiffStats = { treesRead: 0 }): Promise<ChangedFile[]> {
  const out: ChangedFile[] = [];
  const read = async (oid: string | undefined): Promise<Buffer> => {
    if (!oid) return EMPTY;
    stats.treesRead++;
    return readRawTree(repo, oid);
  };
  const walk = async (prefix: string, a: string | undefined, b: string | undefined): Promise<void> => {
    if (a === b) return;
    const [left, right] = await Promise.all([read(a), read(b)]);
    const nested: Promise<void>[] = [];
    for (const { a: ea, b: eb } of diffRawTrees(left, right)) {
      const path = prefix ? `${prefix}/${(ea ?? eb)!.path}` : (ea ?? eb)!.path;
      const aTree = ea?.type === 'tree' ? ea.oid : undefined;
      const bTree = eb?.type === 'tree' ? eb.oid : undefined;
      const aBlob = ea && ea.type !== 'tree' ? ea : undefined;
      const bBlob = eb && eb.type !== 'tree' ? eb : undefined;
      if (aBlob && bBlob) out.push({ path, kind: 'modified' });
      else if (aBlob) out.push({ path, kind: 'removed' });
      else if (bBlob) out.push({ path, kind: 'added' });
      if (aTree || bTree) nested.push(walk(path, aTree, bTree));
    }
    await Promise.all(nested);
  };
  await walk('', fromTree, toTree);
  return out.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

/**
 * Diff two commits (full ids; see resolveCommit) into changed services per environment plus every other
 * changed file. `from` may be undefined for "everything at `to` is new" (the first sync of a repo).
 * Pure git object reads; no validation (load the `to` commit for that).
 */
export async function diffCommits(opts: { repo: EnvRepo; from: string | undefined; to: string; stats?: DiffStats }): Promise<CommitDiff> {
  const repo = snapshot(opts.repo);
  const { from, to } = opts;
  const stats = opts.stats ?? { treesRead: 0 };
  const [fromTree, toTree] = await Promise.all([from ? commitTree(repo, from) : undefined, commitTree(repo, to)]);
  const files = await diffTrees(repo, fromTree, toTree, stats);
  const services: ServiceChange[] = [];
  const otherFiles: string[] = [];
  for (const f of files) {
    const m = SERVICE_FILE.exec(f.path);
    if (m) services.push({ environment: m[1]!, service: m[2]!, kind: f.kind, file: f.path });
    else otherFiles.push(f.path);
  }
  return { from: from ?? '', to, services, otherFiles };
}

/** The changed services of a diff grouped by environment, environments and services in name order. */
export function changedServicesByEnvironment(diff: CommitDiff): Map<string, ServiceChange[]> {
  const out = new Map<string, ServiceChange[]>();
  for (const change of diff.services) out.set(change.environment, [...(out.get(change.environment) ?? []), change]);
  return new Map([...out.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
}

/**
 * Environments whose desired state may differ between the two commits: those with a changed service,
 * a changed file under their directory (environment.yaml, freeze.yaml), or all of them when a
 * repository-wide file changed (slipway.yaml, quarantine.yaml, trusted keys).
 */
export function affectedEnvironments(diff: CommitDiff, environments: string[]): string[] {
  const touched = new Set(diff.services.map((s) => s.environment));
  for (const file of diff.otherFiles) {
    const slash = file.indexOf('/');
    const top = slash < 0 ? undefined : file.slice(0, slash);
    if (top !== undefined && environments.includes(top)) touched.add(top);
    else return [...environments];
  }
  return environments.filter((e) => touched.has(e));
}
