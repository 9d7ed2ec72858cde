/** Rollback by git: revert commits of the change that introduced a bad digest, quarantine, and telling rollbacks apart. */
export {
  createLocalRollback,
  currentDigest,
  findIntroducingCommit,
  serviceFile,
  QUARANTINE_FILE,
  DEFAULT_IDENTITY,
  type Identity,
  type IntroducingCommit,
  type LocalRollback,
  type LocalRollbackOptions,
  type LocalRevertResult,
} from './revert.js';
export {
  rollbackMessage,
  parseTrailers,
  revertedCommitOf,
  isRollbackCommit,
  TRAILER_ROLLBACK,
  TRAILER_REVERTS,
  TRAILER_BAD_DIGEST,
  TRAILER_RESTORED_DIGEST,
  type RollbackMessageInput,
} from './message.js';
export { addQuarantineEntry, quarantinedDigests, digestOf, writeDigest } from './yaml.js';
export { compareAndSwapRef, type SwapResult } from './refs.js';
export { createGitHubRollback, type GitHubRollback, type GitHubRollbackOptions, type GitHubRevertResult } from './github.js';
