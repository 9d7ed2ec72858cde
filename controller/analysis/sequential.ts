/**
 * Cumulative error-rate judging across the intervals of one analysis run, as a group-sequential test.
 *
 * Each interval is a stratum (canary and baseline counted over the same window, so a noise burst that hits both
 * tracks stays inside its stratum). At look k the judge combines the k strata into one one-sided z statistic
 * (inverse-variance weighted risk differences) and compares it with the boundary of look k. Looking again and
 * again at growing data would inflate false alarms if every look used the same level; here the run's total
 * false-alarm probability `alpha` is spent across an open-ended number of looks, alpha_k = alpha * 6 / (pi^2 k^2)
 * (61% at the first look, 15% at the second, ... summing to alpha), and each look's boundary is the exact one for
 * that spending under equally informative looks, computed by the recursive numerical integration of
 * Armitage, McPherson and Rowe (1969): P(no crossing before k, crossing at k | healthy canary) = alpha_k.
 * So on a healthy canary the chance that the statistic is ever beyond its boundary, at any look, is at most alpha.
 */
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import hypergeometricCdf from '@stdlib/stats-base-dists-hypergeometric-cdf';
import { MIN_EXPECTED_CELL } from './stats.js';

/** One interval's error counts on both tracks. */
export interface ErrorCounts {
  canaryRequests: number;
  canaryErrors: number;
  baselineRequests: number;
  baselineErrors: number;
}

export interface SequentialTest {
  /** Look number (strata so far, this one included). */
  look: number;
  method: 'stratified-z' | 'fisher-exact';
  /** Cumulative one-sided z statistic (from the exact p-value when Fisher's test is used). */
  z: number;
  /** Boundary of this look on the z scale: fail when z >= boundary. */
  boundary: number;
  /** One-sided nominal p-value of the cumulative data, and the level it is held to at this look. */
  pValue: number;
  nominalAlpha: number;
  /** Weighted estimates: the canary's excess error rate, the baseline rate, their ratio. */
  increase: number;
  baselineRate: number;
  canaryRate: number;
  ratio: number;
  canaryRequests: number;
  canaryErrors: number;
  baselineRequests: number;
  baselineErrors: number;
}

/** Alpha spent at look k (1-based) of an open-ended sequence: sums to alpha over all looks. */
export function alphaSpentAt(alpha: number, look: number): number {
  return (alpha * 6) / (Math.PI * Math.PI * look * look);
}

/**
 * Looks computed exactly; beyond them each look gets the Bonferroni boundary of its share (valid, a little
 * conservative: it ignores that the looks are correlated). A canary run this long is rare.
 */
const EXACT_LOOKS = 40;
const GRID_STEP = 0.05;
/** Lower end of the continuation region kept in the integration, in standard deviations of S_k. */
const LOWER_SDS = 9;

interface BoundaryTable {
  alpha: number;
  /** Boundaries on the z scale, index 0 = look 1. */
  z: number[];
  /** Sub-density of S_k (sum of k standard normal increments) below its boundary, on the lattice GRID_STEP * (first + i). */
  grid: { first: number; values: Float64Array };
}

const tables = new Map<number, BoundaryTable>();
// The hot loops below read no globals (Math included): under a vm context (jest) every global read is intercepted
// and the integration ran 200x slower.
/** phi(m * GRID_STEP) for m >= 0: every grid point sits on one lattice, so the convolution kernel is a table. */
let kernel = new Float64Array(0);

/** The z boundary of look `look` for a run-wide one-sided false-alarm probability `alpha`. */
export function sequentialBoundary(alpha: number, look: number): number {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  if (!Number.isInteger(look) || look < 1) throw new RangeError(`look must be a positive integer, got ${look}`);
  if (look > EXACT_LOOKS) return upperQuantile(alphaSpentAt(alpha, look));
  let table = tables.get(alpha);
  if (!table) {
    const b1 = upperQuantile(alphaSpentAt(alpha, 1));
    // S_1 ~ N(0, 1), kept where it did not cross.
    const first = Math.floor(-LOWER_SDS / GRID_STEP);
    const last = Math.floor(b1 / GRID_STEP);
    const values = new Float64Array(last - first + 1);
    for (let i = 0; i < values.length; i++) values[i] = phi((first + i) * GRID_STEP);
    table = { alpha, z: [b1], grid: { first, values } };
    tables.set(alpha, table);
  }
  while (table.z.length < look) extend(table);
  return table.z[look - 1]!;
}

/** Adds the next look: find b with P(continue so far, S_k >= b) = alpha_k, then the sub-density of S_k below b. */
function extend(t: BoundaryTable): void {
  const k = t.z.length + 1;
  const target = alphaSpentAt(t.alpha, k);
  const { first, values } = t.grid;
  const weights = trapezoid(values);
  const crossing = (b: number) => {
    let sum = 0;
    for (let i = 0; i < values.length; i++) sum += weights[i]! * upperTail(b / GRID_STEP - (first + i));
    return sum;
  };
  // Crossing probability falls as b rises; bisect on the S scale.
  let lo = 0;
  let hi = 12 * Math.sqrt(k);
  for (let it = 0; it < 50; it++) {
    const mid = (lo + hi) / 2;
    if (crossing(mid) > target) lo = mid;
    else hi = mid;
  }
  const b = (lo + hi) / 2;
  t.z.push(b / Math.sqrt(k));
  const nextFirst = Math.floor((-LOWER_SDS * Math.sqrt(k)) / GRID_STEP);
  const nextLast = Math.floor(b / GRID_STEP);
  const n = nextLast - nextFirst + 1;
  const span = Math.max(n, values.length) + Math.abs(nextFirst - first) + 1;
  if (kernel.length < span) {
    kernel = new Float64Array(span);
    for (let m = 0; m < span; m++) kernel[m] = phi(m * GRID_STEP);
  }
  const next = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const offset = nextFirst + j - first;
    let sum = 0;
    for (let i = 0; i < values.length; i++) {
      const d = offset - i;
      sum += weights[i]! * kernel[d < 0 ? -d : d]!;
    }
    next[j] = sum;
  }
  t.grid = { first: nextFirst, values: next };
}

/** P(Z >= m * GRID_STEP) for m = 0, 1, ...: the bisection reads it by linear interpolation instead of calling the CDF. */
let tail = new Float64Array(0);

/** P(Z >= x * GRID_STEP), x in lattice steps (not necessarily whole). */
function upperTail(x: number): number {
  const ax = x < 0 ? -x : x;
  const m = ax | 0;
  if (m + 1 >= tail.length) {
    if (ax * GRID_STEP > 12) return x > 0 ? 0 : 1;
    const size = Math.ceil(12 / GRID_STEP) + 2;
    tail = new Float64Array(size);
    for (let i = 0; i < size; i++) tail[i] = 1 - normalCdf(i * GRID_STEP, 0, 1);
  }
  const q = tail[m]! + (ax - m) * (tail[m + 1]! - tail[m]!);
  return x >= 0 ? q : 1 - q;
}

function trapezoid(values: Float64Array): Float64Array {
  const w = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) w[i] = values[i]! * GRID_STEP * (i === 0 || i === values.length - 1 ? 0.5 : 1);
  return w;
}

function phi(x: number): number {
  return Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
}

/** z with P(Z >= z) = p (bisection on the normal CDF; p in (0, 1)). */
export function upperQuantile(p: number): number {
  if (p <= 0) return Infinity;
  if (p >= 1) return -Infinity;
  let lo = -40;
  let hi = 40;
  for (let it = 0; it < 200 && hi - lo > 1e-12; it++) {
    const mid = (lo + hi) / 2;
    if (1 - normalCdf(mid, 0, 1) > p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Pseudo-errors that pull a stratum's variance estimate toward the run's pooled rate (a stratum with no errors would otherwise weigh without bound). */
const SHRINK_ERRORS = 5;

/**
 * The cumulative test at look `strata.length`. Each stratum's risk difference is weighted by the inverse of its
 * variance under "no difference" (estimated from its pooled rate, shrunk toward the run's), so a burst interval with
 * a high shared error rate weighs less than a calm one. Few errors overall (an expected cell below
 * MIN_EXPECTED_CELL in the pooled table): Fisher's exact test on the pooled counts instead.
 */
export function sequentialErrorTest(strata: readonly ErrorCounts[], alpha: number): SequentialTest {
  const usable = strata.filter((s) => s.canaryRequests > 0 && s.baselineRequests > 0);
  const look = strata.length;
  const boundary = sequentialBoundary(alpha, Math.max(1, look));
  const nominalAlpha = 1 - normalCdf(boundary, 0, 1);
  const totals = usable.reduce(
    (t, s) => ({
      canaryRequests: t.canaryRequests + s.canaryRequests,
      canaryErrors: t.canaryErrors + s.canaryErrors,
      baselineRequests: t.baselineRequests + s.baselineRequests,
      baselineErrors: t.baselineErrors + s.baselineErrors,
    }),
    { canaryRequests: 0, canaryErrors: 0, baselineRequests: 0, baselineErrors: 0 },
  );
  const base = { look, boundary, nominalAlpha, ...totals };
  const n = totals.canaryRequests + totals.baselineRequests;
  const errors = totals.canaryErrors + totals.baselineErrors;
  const pooledCanary = totals.canaryRequests > 0 ? totals.canaryErrors / totals.canaryRequests : NaN;
  const pooledBaseline = totals.baselineRequests > 0 ? totals.baselineErrors / totals.baselineRequests : NaN;
  if (n === 0 || errors === 0 || errors === n) {
    return { ...base, method: 'stratified-z', z: 0, pValue: 1, increase: pooledCanary - pooledBaseline, baselineRate: pooledBaseline, canaryRate: pooledCanary, ratio: ratioOf(pooledCanary, pooledBaseline) };
  }
  const pooled = errors / n;
  let sumW = 0;
  let sumWD = 0;
  let sumWBase = 0;
  for (const s of usable) {
    const p1 = s.canaryErrors / s.canaryRequests;
    const p0 = s.baselineErrors / s.baselineRequests;
    const size = s.canaryRequests + s.baselineRequests;
    const p = (s.canaryErrors + s.baselineErrors + SHRINK_ERRORS) / (size + SHRINK_ERRORS / pooled);
    const v = p * (1 - p) * (1 / s.canaryRequests + 1 / s.baselineRequests);
    if (!(v > 0)) continue;
    const w = 1 / v;
    sumW += w;
    sumWD += w * (p1 - p0);
    sumWBase += w * p0;
  }
  const increase = sumWD / sumW;
  const baselineRate = sumWBase / sumW;
  const canaryRate = baselineRate + increase;
  const estimates = { increase, baselineRate, canaryRate, ratio: ratioOf(canaryRate, baselineRate) };
  const minExpected = Math.min(totals.canaryRequests * pooled, totals.canaryRequests * (1 - pooled), totals.baselineRequests * pooled, totals.baselineRequests * (1 - pooled));
  if (minExpected < MIN_EXPECTED_CELL) {
    // Prometheus counts (increase() over a window) can be fractional; the exact test needs whole ones.
    const [a, nn, m, n1] = [totals.canaryErrors, n, errors, totals.canaryRequests].map((x) => Math.round(x)) as [number, number, number, number];
    const pValue = a === 0 ? 1 : clamp(1 - hypergeometricCdf(a - 1, nn, m, n1));
    return { ...base, ...estimates, method: 'fisher-exact', pValue, z: upperQuantile(Math.max(pValue, 1e-300)) };
  }
  const z = sumWD / Math.sqrt(sumW);
  return { ...base, ...estimates, method: 'stratified-z', z, pValue: clamp(1 - normalCdf(z, 0, 1)) };
}

function ratioOf(canary: number, baseline: number): number {
  if (baseline > 0) return canary / baseline;
  return canary > 0 ? Infinity : 1;
}

function clamp(p: number): number {
  if (Number.isNaN(p)) return 1;
  return Math.min(1, Math.max(0, p));
}
