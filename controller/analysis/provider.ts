/**
 * The AnalysisProvider the rollout calls each interval: fetch both tracks from the metrics provider the
 * settings choose, then judge. A provider that cannot answer makes the interval inconclusive, never a pass.
 */
import { errorMessage, SlipwayError } from '../../lib/errors.js';
import type { AnalysisSettings } from '../../schemas/index.js';
import { inconclusiveVerdict, judge, type JudgeOptions } from './judge.js';
import { createBuiltinMetricsProvider } from './providers/builtin.js';
import { createPrometheusMetricsProvider } from './providers/prometheus.js';
import type { AnalysisContext, AnalysisProvider, MetricsProvider, RequestLog, TrackMetrics, Verdict } from './types.js';

export interface AnalysisProviderDeps {
  /** The local proxy's request log (needed for `builtin`). */
  requestLog?: RequestLog;
  fetchImpl?: typeof fetch;
  judgeOptions?: Partial<JudgeOptions>;
  /** Prometheus attempts per query (network and 5xx only). */
  attempts?: number;
  backoffMs?: number;
}

/** The metrics provider `settings.provider` names (default `builtin`). */
export function createMetricsProvider(settings: AnalysisSettings | undefined, deps: AnalysisProviderDeps, quantiles: number[] = []): MetricsProvider {
  const kind = settings?.provider ?? 'builtin';
  switch (kind) {
    case 'builtin':
      if (!deps.requestLog) {
        throw new SlipwayError('NO_REQUEST_LOG', 'analysis provider "builtin" reads the local proxy\'s request log, and this target has none; set analysis.provider: prometheus', 'stalling');
      }
      return createBuiltinMetricsProvider(deps.requestLog);
    case 'prometheus':
      if (!settings?.prometheus) {
        throw new SlipwayError('NO_PROMETHEUS_URL', 'analysis.provider is prometheus but analysis.prometheus.url is not set', 'stalling', { path: 'spec.analysis.prometheus.url' });
      }
      return createPrometheusMetricsProvider({ settings: settings.prometheus, quantiles, fetchImpl: deps.fetchImpl, attempts: deps.attempts, backoffMs: deps.backoffMs });
    default: {
      const never: never = kind;
      throw new SlipwayError('UNKNOWN_PROVIDER', `unknown analysis provider ${String(never)} (builtin or prometheus)`, 'stalling');
    }
  }
}

export function createAnalysisProvider(deps: AnalysisProviderDeps = {}): AnalysisProvider {
  return {
    async analyze(ctx: AnalysisContext): Promise<Verdict> {
      let metrics: MetricsProvider;
      try {
        metrics = createMetricsProvider(ctx.settings, deps, (ctx.slos.latency ?? []).map((l) => l.quantile));
      } catch (err) {
        return inconclusiveVerdict(errorMessage(err), ctx.end);
      }
      let canary: TrackMetrics;
      let baseline: TrackMetrics;
      try {
        const window = { environment: ctx.environment, service: ctx.service, start: ctx.start, end: ctx.end };
        [canary, baseline] = await Promise.all([metrics.fetch({ ...window, track: 'canary' }), metrics.fetch({ ...window, ...baselineWindowOf(ctx), track: 'stable' })]);
      } catch (err) {
        return inconclusiveVerdict(`${metrics.name} metrics unavailable: ${errorMessage(err)}`, ctx.end);
      }
      return judge({ canary, baseline, slos: ctx.slos, settings: ctx.settings, at: ctx.end, options: deps.judgeOptions });
    },
  };
}

/**
 * Where the baseline (stable track) is read. A canary step and a blue-green preview compare both tracks over the
 * same window. After a blue-green switch the old version serves nothing, so its traffic in the window of the same
 * length just before the switch is the baseline (before the first post-switch window when the switch time is unknown).
 */
export function baselineWindowOf(ctx: Pick<AnalysisContext, 'start' | 'end' | 'label' | 'switchedAt' | 'baselineWindow'>): { start: Date; end: Date } {
  if (ctx.baselineWindow) return ctx.baselineWindow;
  if (ctx.label !== 'postSwitch') return { start: ctx.start, end: ctx.end };
  const length = ctx.end.getTime() - ctx.start.getTime();
  const switchedAt = ctx.switchedAt ?? ctx.start;
  return { start: new Date(switchedAt.getTime() - length), end: switchedAt };
}
