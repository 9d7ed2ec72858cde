/**
 * The judge: one analysis interval, canary against baseline, per SLO. Pure: plain data in, a Verdict out.
 *
 * Not crying wolf: a relative fail needs statistical significance (one-sided, `alpha`) AND a practical effect
 * (the canary is worse by a ratio and by an absolute margin). An absolute SLO limit fails only when the canary
 * is over it with significance and the baseline is not over it too, even by its point estimate (then the whole
 * environment is in trouble, rolling the canary back would not help, and the interval is inconclusive).
 * Missing data is never a pass.
 *
 * Given the run's earlier intervals (`history`, as the analysis provider keeps them), the error-rate comparison is
 * cumulative: a group-sequential test over all intervals of the run so far (sequential.ts), so evidence too weak
 * to see in one interval adds up, while the run's false-alarm probability stays at `sequentialAlpha` however many
 * intervals it looks at. Each interval's verdict is still its own: `fail` when, at this look, the cumulative
 * statistic is beyond the look's boundary (and the effect is practical). The run logic is unchanged, so
 * `failureLimit` counts consecutive looks beyond the boundary (1: act on the first crossing, which the boundaries
 * already make rare on a healthy canary; 2: a crossing must be confirmed by the next look, one interval later),
 * and `inconclusiveLimit` counts consecutive intervals with too few requests or no usable metrics.
 */
import type { AnalysisSettings, Slos } from '../../schemas/index.js';
import type { Outcome, SloVerdict, TrackMetrics, Verdict } from './types.js';
import { compareProportions, exceedsLimit, mannWhitneyU, quantileSorted, sortedCopy } from './stats.js';
import { alphaSpentAt, sequentialErrorTest, type ErrorCounts } from './sequential.js';

export interface JudgeOptions {
  /** One-sided significance level for every test. */
  alpha: number;
  /** Relative error-rate fail also needs canary rate >= baseline rate x this. */
  minErrorRatio: number;
  /** ... and canary rate >= baseline rate + this (a rate, 0.002 = 0.2 percentage points). */
  minErrorIncrease: number;
  /** Relative latency fail needs the canary quantile >= baseline quantile x (1 + this) (raw samples). */
  latencyMargin: number;
  /** ... and at least this many milliseconds slower. */
  minLatencyIncreaseMs: number;
  /** Relative latency fail with quantiles only (no test possible): canary quantile >= baseline x (1 + this). */
  quantileOnlyMargin: number;
  /** Raw latency samples per track fed to the rank test (even stride beyond this). */
  maxLatencySamples: number;
  /** Requests per track below which an interval is inconclusive, when neither the service nor the environment says. */
  minSamples: number;
  /**
   * Cumulative error-rate comparison (input `history`): one-sided false-alarm probability of the whole analysis
   * run, spent across its looks (sequential.ts).
   */
  sequentialAlpha: number;
}

export const DEFAULT_JUDGE_OPTIONS: JudgeOptions = {
  alpha: 0.005,
  minErrorRatio: 1.3,
  minErrorIncrease: 0.002,
  latencyMargin: 0.2,
  minLatencyIncreaseMs: 5,
  quantileOnlyMargin: 0.5,
  maxLatencySamples: 5000,
  minSamples: 100,
  sequentialAlpha: 0.002,
};

/** Smallest sample the rank test's normal approximation is trusted with. */
const MIN_RANK_SAMPLES = 20;

export interface JudgeInput {
  canary: TrackMetrics | undefined;
  baseline: TrackMetrics | undefined;
  slos: Slos | undefined;
  settings?: AnalysisSettings;
  /** When the interval ended; goes into the verdict. */
  at: Date;
  options?: Partial<JudgeOptions>;
  /**
   * The error counts of the analysis run's earlier intervals (oldest first). When given, the error-rate comparison
   * is the group-sequential test over those intervals and this one (look = history.length + 1), not a test of this
   * interval alone.
   */
  history?: readonly ErrorCounts[];
}

export function judge(input: JudgeInput): Verdict {
  const given = { ...DEFAULT_JUDGE_OPTIONS, ...input.options };
  // In a sequential run every per-interval test (absolute limits, latency) gets its share of the run's alpha at
  // this look; the looks' data are independent, so the shares bound the run's false alarms from them too.
  const options = input.history ? { ...given, alpha: alphaSpentAt(given.sequentialAlpha, input.history.length + 1) } : given;
  const slos = input.slos ?? {};
  const minRequests = slos.minRequests ?? input.settings?.minSamples ?? options.minSamples;
  const compare = slos.compareToBaseline !== false;
  const at = input.at.toISOString();
  const { canary, baseline } = input;

  const dataProblem = describeDataProblem(canary, 'canary') ?? (compare || needsBaseline(slos) ? describeDataProblem(baseline, 'baseline') : undefined);
  if (dataProblem) {
    return verdictOf([{ slo: 'data', outcome: 'inconclusive', summary: dataProblem, numbers: countsOf(canary, baseline) }], at);
  }
  const c = canary!;
  const b = baseline!;
  if (c.requests < minRequests || (compare && b.requests < minRequests)) {
    const which = c.requests < minRequests ? `canary had ${c.requests}` : `baseline had ${b.requests}`;
    return verdictOf(
      [
        {
          slo: 'data',
          outcome: 'inconclusive',
          summary: `too few requests to judge: ${which}, at least ${minRequests} needed`,
          numbers: { ...countsOf(c, b), minRequests },
        },
      ],
      at,
    );
  }

  const verdicts: SloVerdict[] = [];
  if (compare || slos.maxErrorRate !== undefined) verdicts.push(judgeErrorRate(c, b, slos, compare, options, input.history));
  for (const limit of slos.latency ?? []) verdicts.push(judgeLatency(c, b, limit, compare, minRequests, options));
  if (verdicts.length === 0) {
    verdicts.push({
      slo: 'slos',
      outcome: 'inconclusive',
      summary: 'nothing to judge: the service sets no SLO and compareToBaseline is false',
      numbers: {},
    });
  }
  return verdictOf(verdicts, at);
}

function needsBaseline(slos: Slos): boolean {
  // Absolute limits consult the baseline to tell a canary problem from an environment-wide one.
  return slos.maxErrorRate !== undefined || (slos.latency?.length ?? 0) > 0;
}

function describeDataProblem(m: TrackMetrics | undefined, track: string): string | undefined {
  if (!m) return `no metrics for the ${track} track`;
  if (!Number.isFinite(m.requests) || !Number.isFinite(m.errors)) return `${track} metrics are missing or not numbers (requests ${m.requests}, errors ${m.errors})`;
  if (m.requests < 0 || m.errors < 0 || m.errors > m.requests + 1e-9) {
    return `${track} metrics are inconsistent (requests ${m.requests}, errors ${m.errors})`;
  }
  return undefined;
}

function judgeErrorRate(c: TrackMetrics, b: TrackMetrics, slos: Slos, compare: boolean, o: JudgeOptions, history: readonly ErrorCounts[] | undefined): SloVerdict {
  const canaryRate = c.errors / c.requests;
  const baselineRate = b.requests > 0 ? b.errors / b.requests : NaN;
  const numbers: SloVerdict['numbers'] = {
    canaryRequests: c.requests,
    canaryErrors: c.errors,
    canaryRate: round(canaryRate),
    baselineRequests: b.requests,
    baselineErrors: b.errors,
    baselineRate: Number.isFinite(baselineRate) ? round(baselineRate) : null,
    alpha: round(o.alpha),
  };
  const reasons: string[] = [];
  let outcome: Outcome = 'pass';

  if (slos.maxErrorRate !== undefined) {
    const limit = slos.maxErrorRate;
    const canaryOver = exceedsLimit(c.errors, c.requests, limit);
    numbers.maxErrorRate = limit;
    numbers.limitPValue = round(canaryOver.pValue);
    if (canaryOver.pValue < o.alpha) {
      // The baseline over the limit too (its point estimate is enough): an environment-wide problem.
      if (b.requests > 0 && baselineRate > limit) {
        outcome = 'inconclusive';
        reasons.push(`both tracks are over maxErrorRate ${pct(limit)} (canary ${pct(canaryRate)}, baseline ${pct(baselineRate)}): an environment-wide problem, not the canary's`);
      } else {
        outcome = 'fail';
        reasons.push(`canary error rate ${pct(canaryRate)} is over maxErrorRate ${pct(limit)} (p=${fmtP(canaryOver.pValue)})`);
      }
    }
  }

  if (compare && history) {
    const test = sequentialErrorTest([...history, errorCountsOf(c, b)], o.sequentialAlpha);
    Object.assign(numbers, {
      method: `sequential ${test.method}`,
      look: test.look,
      sequentialAlpha: o.sequentialAlpha,
      runCanaryRequests: test.canaryRequests,
      runCanaryErrors: test.canaryErrors,
      runBaselineRequests: test.baselineRequests,
      runBaselineErrors: test.baselineErrors,
      runCanaryRate: finiteOrNull(round(test.canaryRate)),
      runBaselineRate: finiteOrNull(round(test.baselineRate)),
      z: finiteOrNull(round(test.z)),
      boundary: round(test.boundary),
      pValue: round(test.pValue),
      nominalAlpha: round(test.nominalAlpha),
      ratio: finiteOrNull(round(test.ratio)),
      increase: finiteOrNull(round(test.increase)),
    });
    const crossed = test.z >= test.boundary;
    const practical = test.canaryRate >= test.baselineRate * o.minErrorRatio && test.increase >= o.minErrorIncrease;
    if (crossed && practical) {
      outcome = 'fail';
      reasons.push(
        `canary error rate ${pct(test.canaryRate)} vs baseline ${pct(test.baselineRate)} over ${test.look} interval${test.look === 1 ? '' : 's'} (${Number.isFinite(test.ratio) ? test.ratio.toFixed(2) + 'x' : 'baseline had none'}, z=${test.z.toFixed(2)} >= boundary ${test.boundary.toFixed(2)} of look ${test.look}, p=${fmtP(test.pValue)})`,
      );
    }
  } else if (compare) {
    const test = compareProportions(c.errors, c.requests, b.errors, b.requests);
    const ratio = baselineRate > 0 ? canaryRate / baselineRate : canaryRate > 0 ? Infinity : 1;
    numbers.method = test.method;
    numbers.pValue = round(test.pValue);
    numbers.ratio = Number.isFinite(ratio) ? round(ratio) : null;
    numbers.increase = round(canaryRate - baselineRate);
    const significant = test.pValue < o.alpha;
    const practical = canaryRate >= baselineRate * o.minErrorRatio && canaryRate - baselineRate >= o.minErrorIncrease;
    if (significant && practical) {
      outcome = 'fail';
      reasons.push(
        `canary error rate ${pct(canaryRate)} vs baseline ${pct(baselineRate)} (${Number.isFinite(ratio) ? ratio.toFixed(2) + 'x' : 'baseline had none'}, ${test.method} p=${fmtP(test.pValue)})`,
      );
    }
  }
  if (outcome === 'pass') {
    const run = typeof numbers.look === 'number' && numbers.look > 1 ? ` (run of ${numbers.look} intervals: z=${fmtNumber(numbers.z)} < boundary ${fmtNumber(numbers.boundary)})` : '';
    reasons.push(`canary error rate ${pct(canaryRate)}${compare || Number.isFinite(baselineRate) ? `, baseline ${pct(baselineRate)}` : ''}${run}`);
  }
  return { slo: 'errorRate', outcome, summary: reasons.join('; '), numbers };
}

function judgeLatency(
  c: TrackMetrics,
  b: TrackMetrics,
  limit: { quantile: number; maxMs: number },
  compare: boolean,
  minRequests: number,
  o: JudgeOptions,
): SloVerdict {
  const q = limit.quantile;
  const name = `latency p${trimQuantile(q)}`;
  if (c.latenciesMs && c.latenciesMs.length > 0 && (!compare || (b.latenciesMs && b.latenciesMs.length > 0))) {
    return judgeLatencySamples(name, c.latenciesMs, b.latenciesMs ?? [], limit, compare, minRequests, o);
  }
  const key = quantileKey(q, c.latencyQuantilesMs);
  const canaryQ = key !== undefined ? c.latencyQuantilesMs![key] : undefined;
  const baseKey = quantileKey(q, b.latencyQuantilesMs);
  const baselineQ = baseKey !== undefined ? b.latencyQuantilesMs![baseKey] : undefined;
  const numbers: SloVerdict['numbers'] = { quantile: q, maxMs: limit.maxMs, canaryMs: finiteOrNull(canaryQ), baselineMs: finiteOrNull(baselineQ) };
  if (canaryQ === undefined || !Number.isFinite(canaryQ) || (compare && (baselineQ === undefined || !Number.isFinite(baselineQ)))) {
    return { slo: name, outcome: 'inconclusive', summary: `no latency data for p${trimQuantile(q)}`, numbers };
  }
  const reasons: string[] = [];
  let outcome: Outcome = 'pass';
  if (canaryQ > limit.maxMs) {
    if (baselineQ !== undefined && Number.isFinite(baselineQ) && baselineQ > limit.maxMs) {
      outcome = 'inconclusive';
      reasons.push(`both tracks are over ${limit.maxMs} ms at p${trimQuantile(q)} (canary ${ms(canaryQ)}, baseline ${ms(baselineQ)}): environment-wide`);
    } else {
      outcome = 'fail';
      reasons.push(`canary p${trimQuantile(q)} ${ms(canaryQ)} is over ${limit.maxMs} ms`);
    }
  }
  if (compare && baselineQ !== undefined && Number.isFinite(baselineQ)) {
    numbers.margin = o.quantileOnlyMargin;
    if (canaryQ >= baselineQ * (1 + o.quantileOnlyMargin) && canaryQ - baselineQ >= o.minLatencyIncreaseMs) {
      outcome = 'fail';
      reasons.push(`canary p${trimQuantile(q)} ${ms(canaryQ)} is more than ${Math.round(o.quantileOnlyMargin * 100)}% over baseline ${ms(baselineQ)}`);
    }
  }
  if (outcome === 'pass') reasons.push(`canary p${trimQuantile(q)} ${ms(canaryQ)}${baselineQ !== undefined ? `, baseline ${ms(baselineQ)}` : ''}, limit ${limit.maxMs} ms`);
  return { slo: name, outcome, summary: reasons.join('; '), numbers };
}

function judgeLatencySamples(
  name: string,
  canary: number[],
  baseline: number[],
  limit: { quantile: number; maxMs: number },
  compare: boolean,
  minRequests: number,
  o: JudgeOptions,
): SloVerdict {
  const q = limit.quantile;
  const cs = sortedCopy(canary, o.maxLatencySamples);
  const bs = sortedCopy(baseline, o.maxLatencySamples);
  const canaryQ = quantileSorted(cs, q);
  const baselineQ = bs.length > 0 ? quantileSorted(bs, q) : NaN;
  const numbers: SloVerdict['numbers'] = {
    quantile: q,
    maxMs: limit.maxMs,
    canarySamples: canary.length,
    baselineSamples: baseline.length,
    canaryMs: finiteOrNull(round(canaryQ)),
    baselineMs: finiteOrNull(round(baselineQ)),
    alpha: round(o.alpha),
  };
  const needed = Math.max(minRequests, MIN_RANK_SAMPLES);
  if (canary.length < needed || (compare && baseline.length < needed) || cs.some(Number.isNaN) || bs.some(Number.isNaN)) {
    return { slo: name, outcome: 'inconclusive', summary: `too few latency samples (canary ${canary.length}, baseline ${baseline.length}; ${needed} needed)`, numbers };
  }
  const reasons: string[] = [];
  let outcome: Outcome = 'pass';
  // Absolute limit: the canary's quantile over maxMs, and the share of canary requests slower than maxMs
  // significantly above the share the SLO allows (1 - q).
  const slowerCount = cs.length - upperBound(cs, limit.maxMs);
  const slow = exceedsLimit(slowerCount, cs.length, 1 - q);
  numbers.slowShare = round(slowerCount / cs.length);
  numbers.limitPValue = round(slow.pValue);
  if (canaryQ > limit.maxMs && slow.pValue < o.alpha) {
    if (bs.length > 0 && baselineQ > limit.maxMs) {
      outcome = 'inconclusive';
      reasons.push(`both tracks are over ${limit.maxMs} ms at p${trimQuantile(q)} (canary ${ms(canaryQ)}, baseline ${ms(baselineQ)}): environment-wide`);
    } else {
      outcome = 'fail';
      reasons.push(`canary p${trimQuantile(q)} ${ms(canaryQ)} is over ${limit.maxMs} ms (p=${fmtP(slow.pValue)})`);
    }
  }
  if (compare) {
    const test = mannWhitneyU(cs, bs);
    numbers.u = test.u;
    numbers.pValue = round(test.pValue);
    numbers.effect = round(test.effect);
    // Significant (the rank test: the canary's latencies are shifted up) and practical: the canary's quantile at or
    // past the margin over the baseline's (a ratio and milliseconds) ... and not by a handful of slow requests: the
    // share of canary requests past that margin is significantly above the baseline's (one-sided, alpha). A
    // quantile's point estimate from a short interval rests on its few slowest requests (p99 of 180 requests is the
    // second slowest): with the rank test seeing a fresh process slightly slower overall (P(canary slower)=0.61,
    // p=2.6e-5) and three slow requests (p99 21.1 vs 13.4 ms), a healthy canary was rolled back on a busy machine.
    // (The tail test alone, without the rank test, doubled the simulated false rollbacks: the margin comes from the
    // same baseline sample whose share past it is counted.)
    const margin = Math.max(baselineQ * (1 + o.latencyMargin), baselineQ + o.minLatencyIncreaseMs);
    const practical = canaryQ >= margin;
    const tail = compareProportions(cs.length - upperBound(cs, margin), cs.length, bs.length - upperBound(bs, margin), bs.length);
    numbers.tailPValue = round(tail.pValue);
    if (test.pValue < o.alpha && practical && tail.pValue < o.alpha) {
      outcome = 'fail';
      reasons.push(
        `canary is slower: p${trimQuantile(q)} ${ms(canaryQ)} vs baseline ${ms(baselineQ)} (Mann-Whitney p=${fmtP(test.pValue)}, P(canary slower)=${test.effect.toFixed(2)}; ${pct(tail.canaryRate)} of canary requests over ${ms(margin)} vs ${pct(tail.baselineRate)}, p=${fmtP(tail.pValue)})`,
      );
    }
  }
  if (outcome === 'pass') reasons.push(`canary p${trimQuantile(q)} ${ms(canaryQ)}${compare ? `, baseline ${ms(baselineQ)}` : ''}, limit ${limit.maxMs} ms`);
  return { slo: name, outcome, summary: reasons.join('; '), numbers };
}

/** Overall outcome: any fail is a fail; otherwise any inconclusive is inconclusive; only all-pass passes. */
export function verdictOf(slos: SloVerdict[], at: string): Verdict {
  const outcome: Outcome = slos.some((s) => s.outcome === 'fail')
    ? 'fail'
    : slos.length === 0 || slos.some((s) => s.outcome === 'inconclusive')
      ? 'inconclusive'
      : 'pass';
  const shown = outcome === 'pass' ? slos : slos.filter((s) => s.outcome === outcome);
  const summary = `${outcome}: ${shown.map((s) => `${s.slo}: ${s.summary}`).join('; ')}`;
  return { outcome, summary, slos, at };
}

/** An inconclusive verdict for a provider that could not answer (network, timeout, bad query). */
export function inconclusiveVerdict(reason: string, at: Date): Verdict {
  return verdictOf([{ slo: 'data', outcome: 'inconclusive', summary: reason, numbers: {} }], at.toISOString());
}

/** This interval's error counts, as a stratum of the sequential test. */
export function errorCountsOf(c: TrackMetrics, b: TrackMetrics): ErrorCounts {
  return { canaryRequests: c.requests, canaryErrors: c.errors, baselineRequests: b.requests, baselineErrors: b.errors };
}

function countsOf(c: TrackMetrics | undefined, b: TrackMetrics | undefined): SloVerdict['numbers'] {
  return {
    canaryRequests: finiteOrNull(c?.requests),
    canaryErrors: finiteOrNull(c?.errors),
    baselineRequests: finiteOrNull(b?.requests),
    baselineErrors: finiteOrNull(b?.errors),
  };
}

/** Index of the first value > x in a sorted array. */
function upperBound(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function quantileKey(q: number, quantiles: Record<string, number> | undefined): string | undefined {
  if (!quantiles) return undefined;
  return Object.keys(quantiles).find((k) => Math.abs(Number(k) - q) < 1e-9);
}

function trimQuantile(q: number): string {
  return String(Math.round(q * 1000) / 10).replace(/\.0$/, '');
}

function finiteOrNull(x: number | undefined): number | null {
  return x !== undefined && Number.isFinite(x) ? x : null;
}

function round(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(6)) : x;
}

function pct(rate: number): string {
  return Number.isFinite(rate) ? `${(rate * 100).toFixed(2)}%` : 'n/a';
}

function ms(x: number): string {
  return `${Math.round(x * 10) / 10} ms`;
}

function fmtNumber(x: number | string | null | undefined): string {
  return typeof x === 'number' ? x.toFixed(2) : String(x);
}

function fmtP(p: number): string {
  return p < 1e-4 ? p.toExponential(1) : p.toFixed(4);
}
