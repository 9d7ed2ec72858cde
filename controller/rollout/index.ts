/** The rollout core: a pure state machine from (state, observation, now, spec) to (state, intents). */
export { decide, initialState, requestPromote } from './machine.js';
export { planFor, rolloutSpecFrom, strategyOf, DEFAULTS } from './plan.js';
export { parseDuration, formatDuration } from './duration.js';
export { completed, PHASES } from './types.js';
export type {
  Phase,
  StrategyType,
  RolloutSpec,
  PlanStep,
  RolloutMode,
  AnalysisProgress,
  Revision,
  RolloutState,
  VerdictObservation,
  RolloutObservation,
  RolloutEventKind,
  RolloutEvent,
  Intent,
  IntentType,
  Decision,
} from './types.js';
