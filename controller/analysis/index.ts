/** Canary analysis: metrics providers, the judge, and the run across intervals. */
export * from './types.js';
export { judge, verdictOf, inconclusiveVerdict, errorCountsOf, DEFAULT_JUDGE_OPTIONS, type JudgeInput, type JudgeOptions } from './judge.js';
export { sequentialErrorTest, sequentialBoundary, alphaSpentAt, upperQuantile, type ErrorCounts, type SequentialTest } from './sequential.js';
export { compareProportions, exceedsLimit, mannWhitneyU, quantileSorted, sortedCopy, type ProportionTest, type RankTest } from './stats.js';
export {
  startAnalysisRun,
  recordVerdict,
  isFinished,
  analysisLimits,
  DEFAULT_ANALYSIS_LIMITS,
  type AnalysisRun,
  type AnalysisPhase,
  type AnalysisLimits,
  type AnalysisDecision,
} from './run.js';
export { createBuiltinMetricsProvider, isErrorStatus } from './providers/builtin.js';
export {
  createPrometheusClient,
  createPrometheusMetricsProvider,
  renderQuery,
  DEFAULT_PROMETHEUS_QUERIES,
  type PrometheusClient,
  type PrometheusClientOptions,
  type PrometheusMetricsOptions,
  type PrometheusSample,
  type PrometheusSeries,
  type TemplateVars,
} from './providers/prometheus.js';
export { createAnalysisProvider, createMetricsProvider, baselineWindowOf, type AnalysisProviderDeps } from './provider.js';
export { parseDurationMs } from './duration.js';
