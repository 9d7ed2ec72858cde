/** Persisted controller state: crash-safe records per service and environment, and the audit trail. */
export { StateStore } from './store.js';
export { FileAuditLog, parseLines } from './audit.js';
export { writeFileAtomic, readJson, appendLinesDurable } from './atomic.js';
