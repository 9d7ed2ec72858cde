/** The reconcile shell: sync → gates → rollout core → target → state. */
export { Reconciler, type ReconcilerOptions } from './reconciler.js';
export { ControllerMetrics } from './metrics.js';
export { systemClock } from './types.js';
export type {
  Clock,
  EnvironmentSource,
  ProvenanceVerifier,
  ActiveFreeze,
  FreezeCalendar,
  AuditEntry,
  AuditSink,
  ReconcilePorts,
  GateCode,
  GateBlock,
  PendingIntents,
  ServiceRecord,
  EnvironmentRecord,
  SyncTrigger,
  SyncReport,
} from './types.js';
