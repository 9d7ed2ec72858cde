/** The controller: follow main of the environments repo and make every environment match it, safely. */
export { Controller, serviceStatus, type ControllerOptions, type ServiceStatus, type EnvironmentStatus } from './controller.js';
export { ApiServer, verifyGithubSignature, type ApiOptions } from './api/index.js';
export { GitEnvironmentSource, SyncLoop, DEFAULT_SCHEDULE, isRemote } from './sync/index.js';
export { freezeCalendar, runGates, isRollbackMessage } from './gates/index.js';
export { StateStore, FileAuditLog } from './state/index.js';
export { Reconciler, ControllerMetrics, systemClock } from './reconcile/index.js';
export type * from './reconcile/index.js';
