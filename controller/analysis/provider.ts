/**
 * The AnalysisProvider the rollout calls each interval: fetch both tracks from the metrics provider the
 * settings choose, then judge. A provider that cannot answer makes the interval inconclusive, never a pass.
 */
import { settleAll } from './settle.js';
import { errorMessage, SlipwayError } from '../../lib/errors.js';
import type { AnalysisSettings } from '../../schemas/index.js';
import { errorCountsOf, inconclusiveVerdict, judge, type JudgeOptions } from './judge.js';
import type { ErrorCounts } from './sequential.js';
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

/**
 * The error counts of each analysis run so far, per service and step label, for the sequential test. A run is the
 * chain of contiguous windows the rollout asks for (each starts where the last ended); a window that does not
 * continue the chain starts a new run. Kept in memory: after a controller restart the next window starts a new
 * run at look 1 (one more share of alpha spent, documented in sequential.ts), never a wrong chain.
 */
interface RunHistory {
  lastStart: number;
  lastEnd: number;
  strata: ErrorCounts[];
  /** Whether the last window added a stratum (a window without usable counts continues the chain without one). */
  appended: boolean;
}

export function createAnalysisProvider(deps: AnalysisProviderDeps = {}): AnalysisProvider {
  const runs = new Map<string, RunHistory>();
  return {
    async analyze(ctx: AnalysisContext): Promise<Verdict> {
      const chain = sequentialApplies(ctx) ? continueChain(runs, ctx) : undefined;
      const verdict = await analyzeWindow(ctx, chain?.history);
      if (chain) {
        const { key, history, counts } = { ...chain, counts: verdict.counts };
        runs.set(key, { lastStart: ctx.start.getTime(), lastEnd: ctx.end.getTime(), strata: counts ? [...history, counts] : history, appended: counts !== undefined });
      }
      return verdict.verdict;
    },
  };

  async function analyzeWindow(ctx: AnalysisContext, history: ErrorCounts[] | undefined): Promise<{ verdict: Verdict; counts?: ErrorCounts }> {
    let metrics: MetricsProvider;
    try {
      metrics = createMetricsProvider(ctx.settings, deps, (ctx.slos.latency ?? []).map((l) => l.quantile));
    } catch (err) {
      return { verdict: inconclusiveVerdict(errorMessage(err), ctx.end) };
    }
    let canary: TrackMetrics;
    let baseline: TrackMetrics;
    try {
      const window = { environment: ctx.environment, service: ctx.service, start: ctx.start, end: ctx.end };
      [canary, baseline] = await settleAll<[TrackMetrics, TrackMetrics]>([metrics.fetch({ ...window, track: 'canary' }), metrics.fetch({ ...window, ...baselineWindowOf(ctx), track: 'stable' })]);
    } catch (err) {
      return { verdict: inconclusiveVerdict(`${metrics.name} metrics unavailable: ${errorMessage(err)}`, ctx.end) };
    }
    const verdict = judge({ canary, baseline, slos: ctx.slos, settings: ctx.settings, at: ctx.end, options: deps.judgeOptions, ...(history ? { history } : {}) });
    return { verdict, ...(isUsableCounts(canary) && isUsableCounts(baseline) ? { counts: errorCountsOf(canary, baseline) } : {}) };
  }
}

/**
 * The run this window belongs to: it continues the chain when it starts where the last window ended; the same
 * window asked again (a replayed intent) is judged on the same history, not appended twice; anything else starts
 * a new run.
 */
function continueChain(runs: Map<string, RunHistory>, ctx: AnalysisContext): { key: string; history: ErrorCounts[] } {
  const key = `${ctx.environment}/${ctx.service}/${ctx.label ?? 'canary'}`;
  const known = runs.get(key);
  const start = ctx.start.getTime();
  const end = ctx.end.getTime();
  if (!known) return { key, history: [] };
  if (known.lastEnd === start) return { key, history: known.strata };
  if (known.lastStart === start && known.lastEnd === end) return { key, history: known.appended ? known.strata.slice(0, -1) : known.strata };
  return { key, history: [] };
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

/**
 * The sequential test needs a fresh baseline stratum per window. After a blue-green switch every window is compared
 * with the same pre-switch baseline window, so those looks are judged one at a time.
 */
function sequentialApplies(ctx: AnalysisContext): boolean {
  return ctx.label !== 'postSwitch' && !ctx.baselineWindow;
}

function isUsableCounts(m: TrackMetrics): boolean {
  return Number.isFinite(m.requests) && Number.isFinite(m.errors) && m.requests >= 0 && m.errors >= 0 && m.errors <= m.requests;
}
