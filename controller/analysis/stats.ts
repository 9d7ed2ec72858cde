/**
 * The statistics the judge needs, one-sided (H1: the canary is worse). The distribution functions come from
 * stdlib; the tests themselves are written here because no maintained npm package offers a two-sample
 * Mann-Whitney U with tie correction or a one-sided two-proportion test.
 */
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import hypergeometricCdf from '@stdlib/stats-base-dists-hypergeometric-cdf';

export interface ProportionTest {
  method: 'z-test' | 'fisher-exact';
  /** One-sided p-value for "canary rate > baseline rate". */
  pValue: number;
  canaryRate: number;
  baselineRate: number;
  /** z statistic (z-test only). */
  z?: number;
}

/** Smallest expected cell count below which the normal approximation is not trusted and Fisher's exact test is used. */
export const MIN_EXPECTED_CELL = 5;

/**
 * One-sided comparison of two error proportions: pooled two-proportion z-test, or Fisher's exact test
 * (hypergeometric upper tail) when any expected cell count is below MIN_EXPECTED_CELL.
 */
export function compareProportions(canaryErrors: number, canaryTotal: number, baselineErrors: number, baselineTotal: number): ProportionTest {
  if (canaryTotal <= 0 || baselineTotal <= 0) throw new RangeError('compareProportions needs at least one request per track');
  const canaryRate = canaryErrors / canaryTotal;
  const baselineRate = baselineErrors / baselineTotal;
  const total = canaryTotal + baselineTotal;
  const errors = canaryErrors + baselineErrors;
  if (errors === 0 || errors === total) return { method: 'z-test', pValue: 1, canaryRate, baselineRate, z: 0 };
  const pooled = errors / total;
  const minExpected = Math.min(
    canaryTotal * pooled,
    canaryTotal * (1 - pooled),
    baselineTotal * pooled,
    baselineTotal * (1 - pooled),
  );
  if (minExpected < MIN_EXPECTED_CELL) {
    // P(X >= canaryErrors) with X ~ Hypergeometric(population total, successes errors, draws canaryTotal).
    const pValue = canaryErrors === 0 ? 1 : 1 - hypergeometricCdf(canaryErrors - 1, total, errors, canaryTotal);
    return { method: 'fisher-exact', pValue: clampProbability(pValue), canaryRate, baselineRate };
  }
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / canaryTotal + 1 / baselineTotal));
  const z = (canaryRate - baselineRate) / se;
  return { method: 'z-test', pValue: clampProbability(normalCdf(-z, 0, 1)), canaryRate, baselineRate, z };
}

/** One-sided test that a rate exceeds a fixed limit (normal approximation to the binomial, exact binomial tail when small). */
export function exceedsLimit(errors: number, total: number, limit: number): { pValue: number; rate: number } {
  const rate = errors / total;
  if (limit <= 0) return { pValue: errors > 0 ? 0 : 1, rate };
  if (limit >= 1) return { pValue: 1, rate };
  const sd = Math.sqrt((limit * (1 - limit)) / total);
  const z = (rate - limit - 0.5 / total) / sd;
  return { pValue: clampProbability(normalCdf(-z, 0, 1)), rate };
}

export interface RankTest {
  /** U of the canary sample. */
  u: number;
  z: number;
  /** One-sided p-value for "canary values tend to be larger". */
  pValue: number;
  /** Probability of superiority, U / (n1·n2): 0.5 when the tracks are alike, 1 when every canary value is larger. */
  effect: number;
  canarySize: number;
  baselineSize: number;
}

/**
 * Mann-Whitney U, one-sided (canary larger), normal approximation with tie and continuity correction.
 * Inputs must be sorted ascending (use `sortedCopy`); both samples need at least one value.
 */
export function mannWhitneyU(canarySorted: ArrayLike<number>, baselineSorted: ArrayLike<number>): RankTest {
  const n1 = canarySorted.length;
  const n2 = baselineSorted.length;
  if (n1 === 0 || n2 === 0) throw new RangeError('mannWhitneyU needs at least one value per sample');
  let i = 0;
  let j = 0;
  let rank = 0;
  let rankSum = 0;
  let tieTerm = 0;
  while (i < n1 || j < n2) {
    const value = j >= n2 || (i < n1 && canarySorted[i]! <= baselineSorted[j]!) ? canarySorted[i]! : baselineSorted[j]!;
    let a = 0;
    let b = 0;
    while (i < n1 && canarySorted[i] === value) {
      a++;
      i++;
    }
    while (j < n2 && baselineSorted[j] === value) {
      b++;
      j++;
    }
    const t = a + b;
    rankSum += a * (rank + (t + 1) / 2);
    rank += t;
    if (t > 1) tieTerm += t * t * t - t;
  }
  const n = n1 + n2;
  const u = rankSum - (n1 * (n1 + 1)) / 2;
  const mean = (n1 * n2) / 2;
  const variance = ((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  const effect = u / (n1 * n2);
  if (!(variance > 0)) return { u, z: 0, pValue: 1, effect, canarySize: n1, baselineSize: n2 };
  const z = (u - mean - 0.5) / Math.sqrt(variance);
  return { u, z, pValue: clampProbability(normalCdf(-z, 0, 1)), effect, canarySize: n1, baselineSize: n2 };
}

/** Sorted copy as a Float64Array (numeric sort), at most `max` values taken at an even stride so huge windows stay cheap. */
export function sortedCopy(values: readonly number[], max = Infinity): Float64Array {
  const n = values.length;
  const take = Math.min(n, max);
  const out = new Float64Array(take);
  if (take === n) for (let k = 0; k < n; k++) out[k] = values[k]!;
  else for (let k = 0; k < take; k++) out[k] = values[Math.floor((k * n) / take)]!;
  return out.sort();
}

/** Quantile of a sorted sample, linear interpolation between order statistics (R type 7, numpy default). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

function clampProbability(p: number): number {
  if (Number.isNaN(p)) return 1;
  return Math.min(1, Math.max(0, p));
}
