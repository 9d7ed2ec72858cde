/** Promotion orchestration: land a build in the first environment, promote a running digest to the next. */
export { attestationLocation, landBuild, promote, type BuildOutput, type Landing, type PromoteRequest, type PromotionDeps } from './promote.js';
export { repoStateReader, type DesiredStateReader, type ServiceImage } from './reader.js';
export { actorOf, auditPath, defaultVerifier, githubStateReader, openProvider, parseInstant, REPO_FLAG_HELP, reportFailure, withRepoFlags, type Opened, type RepoFlags } from './cli.js';
export { promotionHistory, type HistoryEntry, type HistoryKind, type HistoryQuery } from './history.js';
export { describeLanding, landAfterBuild, type BuiltImage } from './after-build.js';
