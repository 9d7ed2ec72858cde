/**
 * The environments repository: open it (path or URL), resolve a ref to a commit, load and validate the
 * desired state of every environment at that commit (git objects only, never a working tree), and
 * diff two commits into the services that changed per environment.
 *
 *   const repo = await openRepo({ repo: '/path/or/url' });
 *   const commit = await resolveRef({ repo, ref: 'main' });
 *   const result = await loadDesiredState({ repo, commit });   // { ok, state } | { ok: false, problems }
 *   const diff = await diffCommits({ repo, from: lastGood, to: commit });
 */
export type { CommitDiff, DesiredState, EnvironmentState, LoadResult, Problem, ServiceChange, ServiceChangeKind } from './types.js';
export { openRepo, fetchRepo, resolveCommit, resolveCommit as resolveRef, readTextFile, snapshot, clearTreeCache, treeCacheStats, remoteCacheDir, redactUrl, isRemoteUrl, type EnvRepo } from './repo.js';
export {
  loadDesiredState,
  loaderStats,
  clearLoaderCache,
  servicePath,
  SLIPWAY_FILE,
  QUARANTINE_FILE,
  ENVIRONMENT_FILE,
  FREEZE_FILE,
  SERVICES_DIR,
} from './load.js';
export { diffCommits, diffTrees, changedServicesByEnvironment, affectedEnvironments, type DiffStats, type ChangedFile } from './diff.js';
export { initEnvironmentsRepo, exampleEnvironmentsDir, repoNameFrom, type InitResult } from './init.js';
