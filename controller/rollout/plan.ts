/** Every strategy compiles to one list of plan steps, so one machine walks them all. */
import { createHash } from 'node:crypto';
import { strategyType, type AnalysisStep, type CanaryStep, type EnvironmentConfig, type ServiceConfig, type Strategy } from '../../schemas/index.js';
import { parseDuration } from './duration.js';
import type { PlanStep, RolloutSpec, StrategyType } from './types.js';

export const DEFAULTS = {
  analysisInterval: '30s',
  analysisWarmup: '0s',
  // The error-rate judge is group-sequential (alpha spent across looks), so one crossing of its boundary is
  // already a controlled decision: 1 meets both > 99% detection and < 0.5% false rollbacks (bench/judge.ts).
  failureLimit: 1,
  inconclusiveLimit: 3,
  progressDeadlineMs: 5 * 60_000,
  replicas: 1,
  healthPath: '/healthz',
} as const;

function analysisStep(step: AnalysisStep | undefined, spec: RolloutSpec, label: 'canary' | 'preview' | 'postSwitch'): PlanStep {
  return {
    kind: 'analysis',
    label,
    intervalMs: step?.interval ? parseDuration(step.interval) : spec.analysis.intervalMs,
    count: step?.count ?? 1,
    warmupMs: step?.warmup ? parseDuration(step.warmup) : spec.analysis.warmupMs,
  };
}

function canaryStep(step: CanaryStep, spec: RolloutSpec): PlanStep {
  if ('setWeight' in step) return { kind: 'setWeight', weight: step.setWeight };
  if ('pause' in step) {
    return step.pause.duration !== undefined
      ? { kind: 'pause', reason: 'step', durationMs: parseDuration(step.pause.duration) }
      : { kind: 'pause', reason: 'step' };
  }
  return analysisStep(step.analysis, spec, 'canary');
}

/**
 * The plan of a `steps` rollout. A known-good digest (fastPath) skips straight to promotion, whatever the
 * strategy: it already ran healthy here, so a revert to it must be fast.
 */
export function planFor(spec: RolloutSpec, fastPath: boolean): PlanStep[] {
  if (fastPath) return [{ kind: 'promote' }];
  const strategy: Strategy = spec.strategy;
  if ('canary' in strategy) {
    return [...strategy.canary.steps.map((s) => canaryStep(s, spec)), { kind: 'promote' }];
  }
  if ('blueGreen' in strategy) {
    const bg = strategy.blueGreen;
    const plan: PlanStep[] = [];
    if (bg.previewAnalysis) plan.push(analysisStep(bg.previewAnalysis, spec, 'preview'));
    if (bg.autoPromote === false) plan.push({ kind: 'pause', reason: 'approval' });
    plan.push({ kind: 'setWeight', weight: 100 });
    if (bg.postSwitchAnalysis) plan.push(analysisStep(bg.postSwitchAnalysis, spec, 'postSwitch'));
    if (bg.scaleDownDelay) plan.push({ kind: 'pause', reason: 'keepWarm', durationMs: parseDuration(bg.scaleDownDelay) });
    plan.push({ kind: 'promote' });
    return plan;
  }
  return [{ kind: 'promote' }];
}

export function strategyOf(spec: RolloutSpec): StrategyType {
  return strategyType(spec.strategy);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The rollout spec of one service file in one environment (analysis defaults from the environment). */
export function rolloutSpecFrom(service: ServiceConfig, environment?: EnvironmentConfig): RolloutSpec {
  const s = service.spec;
  const settings = { ...environment?.spec.analysis, ...s.analysis };
  const track = {
    repository: s.image.repository,
    digest: s.image.digest,
    replicas: s.replicas ?? DEFAULTS.replicas,
    port: s.port,
    healthPath: s.healthPath ?? DEFAULTS.healthPath,
    env: s.env ?? {},
    ...(s.proxyPort !== undefined ? { proxyPort: s.proxyPort } : {}),
  };
  const strategy: Strategy = s.strategy ?? { rolling: {} };
  const revision = createHash('sha256').update(stableJson({ track, strategy })).digest('hex').slice(0, 16);
  return {
    digest: s.image.digest,
    track,
    strategy,
    analysis: {
      intervalMs: parseDuration(settings.interval ?? DEFAULTS.analysisInterval),
      warmupMs: parseDuration(settings.warmup ?? DEFAULTS.analysisWarmup),
      failureLimit: settings.failureLimit ?? DEFAULTS.failureLimit,
      inconclusiveLimit: settings.inconclusiveLimit ?? DEFAULTS.inconclusiveLimit,
    },
    progressDeadlineMs: DEFAULTS.progressDeadlineMs,
    revision,
    slos: s.slos ?? {},
    analysisSettings: settings,
  };
}
