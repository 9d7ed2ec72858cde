/** Promotion orchestration: land a build in the first environment, promote a running digest to the next. */
export { attestationLocation, landBuild, promote, type BuildOutput, type Landing, type PromoteRequest, type PromotionDeps } from './promote.js';
export { repoStateReader, type DesiredStateReader, type ServiceImage } from './reader.js';
