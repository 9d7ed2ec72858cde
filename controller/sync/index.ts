/** Following main of the environments repository: the git source and the poll schedule. */
export { GitEnvironmentSource, isRemote, type GitSourceOptions } from './source.js';
export { SyncLoop, DEFAULT_SCHEDULE, type SyncLoopOptions } from './loop.js';
