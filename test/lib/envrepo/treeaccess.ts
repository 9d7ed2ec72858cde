/** Internals of lib/envrepo the tree tests check directly (the public surface is lib/envrepo/index.ts). */
import { readTreeEntries, type EnvRepo } from '../../../lib/envrepo/repo.js';
export { commitTree } from '../../../lib/envrepo/repo.js';
export { diffTrees, openRepo, type EnvRepo } from '../../../lib/envrepo/index.js';

export async function readTreeEntriesForTest(repo: EnvRepo, oid: string) {
  return (await readTreeEntries(repo, oid)).map((e) => ({ mode: e.mode, type: e.type, oid: e.oid, path: e.path }));
}
