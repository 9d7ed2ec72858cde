/** Gates a change passes before any target sees it: quarantine, provenance, freeze windows. */
export { runGates, isRollbackMessage, quarantineEntryFor, type GateInput, type GatePorts, type GateOutcome } from './gates.js';
export { freezeCalendar, type WindowEvaluator } from './freeze.js';
