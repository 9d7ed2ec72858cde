/** The pipeline runner: `.slipway/pipeline.yaml` parsed and checked, conditions, stages run in a checkout. */
export { parsePipeline, pipelineFromConfig, pipelineInvalid, durationMs, PIPELINE_FILE, DEFAULT_STAGE_TIMEOUT_MS, type Pipeline, type Stage } from './load.js';
export { parseCondition, evaluateCondition, ConditionSyntaxError, CONDITION_VARIABLES, type Condition, type ConditionFacts } from './condition.js';
export {
  runPipeline,
  formatMs,
  type RunPipelineOptions,
  type PipelineRun,
  type PipelineEvent,
  type StageResult,
  type StageStatus,
  type ShardResult,
  type Clock,
} from './run.js';
export { createProgressReporter, stageLine, type ProgressReporter, type ProgressStream } from './progress.js';
