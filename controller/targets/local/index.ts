/** The embedded local target: images unpacked by digest, run as supervised processes behind a weighted proxy. */
export { createLocalTarget, type LocalTarget, type LocalTargetOptions, type InstanceDescription } from './local-target.js';
export { systemClock, type Clock } from './clock.js';
export { DEFAULT_RESTART_POLICY, decideRestart, type RestartPolicy, type RestartDecision } from './backoff.js';
export { DEFAULT_HEALTH_POLICY, LOG_ROTATE_BYTES, type HealthPolicy, type InstanceState } from './supervisor.js';
export { ImageCache, processCommand, type CachedImage, type ProcessCommand, type ImageRunConfig } from './image-cache.js';
export { reapOrphans, type ReapedOrphan } from './run-state.js';
