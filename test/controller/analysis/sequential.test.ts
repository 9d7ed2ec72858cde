/**
 * The cumulative (group-sequential) error-rate test: its boundaries hold the run's false-alarm probability to
 * alpha however many times it looks, and evidence adds up across intervals so a doubled error rate too small to
 * see in one interval is seen in a few.
 */
import {
  alphaSpentAt,
  createAnalysisProvider,
  errorCountsOf,
  judge,
  sequentialBoundary,
  sequentialErrorTest,
  upperQuantile,
  type AnalysisContext,
  type ErrorCounts,
} from '../../../controller/analysis/index.js';
import { ProxyRequestLog } from '../../../controller/proxy/index.js';
import type { Track } from '../../../controller/targets/types.js';
import { DEFAULT_PROFILE, rng, simulateInterval } from '../../support/traffic.js';

function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

describe('the group-sequential boundaries', () => {
  it('put the first look at the plain one-sided quantile of its alpha share', () => {
    expect(sequentialBoundary(0.002, 1)).toBeCloseTo(upperQuantile(alphaSpentAt(0.002, 1)), 6);
    expect(upperQuantile(0.025)).toBeCloseTo(1.959964, 5);
  });

  it('spend alpha across an open-ended number of looks (the shares sum to alpha)', () => {
    let sum = 0;
    for (let k = 1; k <= 100_000; k++) sum += alphaSpentAt(0.002, k);
    expect(sum).toBeCloseTo(0.002, 7);
    expect(alphaSpentAt(0.002, 1)).toBeGreaterThan(alphaSpentAt(0.002, 2));
  });

  it('rise with each look, but less than a Bonferroni split would (looks at growing data are correlated)', () => {
    const b = [1, 2, 3, 4, 5].map((k) => sequentialBoundary(0.002, k));
    for (let k = 1; k < b.length; k++) expect(b[k]!).toBeGreaterThan(b[k - 1]!);
    for (let k = 2; k <= 5; k++) expect(sequentialBoundary(0.002, k)).toBeLessThan(upperQuantile(alphaSpentAt(0.002, k)));
  });

  it('are crossed by a statistic with no effect about as often as alpha spent (seeded Monte Carlo)', () => {
    // A cumulative z of standard normal increments is what the test statistic is under "canary = baseline".
    const alpha = 0.05;
    const looks = 6;
    const runs = 40_000;
    const r = rng(42);
    let crossed = 0;
    for (let i = 0; i < runs; i++) {
      let s = 0;
      for (let k = 1; k <= looks; k++) {
        s += normal(r);
        if (s / Math.sqrt(k) >= sequentialBoundary(alpha, k)) {
          crossed++;
          break;
        }
      }
    }
    let spent = 0;
    for (let k = 1; k <= looks; k++) spent += alphaSpentAt(alpha, k);
    const se = Math.sqrt((spent * (1 - spent)) / runs);
    expect(Math.abs(crossed / runs - spent)).toBeLessThan(4 * se);
    // Without the correction (every look at the first look's level) it would be far more.
    let naive = 0;
    const r2 = rng(42);
    for (let i = 0; i < runs; i++) {
      let s = 0;
      for (let k = 1; k <= looks; k++) {
        s += normal(r2);
        if (s / Math.sqrt(k) >= sequentialBoundary(alpha, 1)) {
          naive++;
          break;
        }
      }
    }
    expect(naive / runs).toBeGreaterThan(1.5 * spent);
  });

  it('refuse a look that is not a positive integer and an alpha outside (0, 1)', () => {
    expect(() => sequentialBoundary(0.002, 0)).toThrow(/look/);
    expect(() => sequentialBoundary(0, 1)).toThrow(/alpha/);
  });
});

describe('the cumulative error-rate test', () => {
  const calm = (canaryErrors: number, baselineErrors: number): ErrorCounts => ({ canaryRequests: 6000, canaryErrors, baselineRequests: 54000, baselineErrors });

  it('finds nothing when both tracks fail at the same rate', () => {
    const t = sequentialErrorTest([calm(30, 270), calm(31, 268)], 0.002);
    expect(t.look).toBe(2);
    expect(t.z).toBeLessThan(t.boundary);
    expect(t.increase).toBeCloseTo(0, 3);
  });

  it('weighs a noise-burst interval less than a calm one', () => {
    // The same +0.5 points on the canary, in a calm interval and in one where both tracks fail 4x as often.
    const burst: ErrorCounts = { canaryRequests: 6000, canaryErrors: 165, baselineRequests: 54000, baselineErrors: 1215 };
    const withBurst = sequentialErrorTest([calm(60, 270), burst], 0.002);
    const pooledRate = (s: ErrorCounts[]) => s.reduce((a, x) => a + x.baselineErrors, 0) / s.reduce((a, x) => a + x.baselineRequests, 0);
    // The weighted baseline rate leans to the calm interval, so the ratio still shows the doubling.
    expect(withBurst.baselineRate).toBeLessThan(pooledRate([calm(60, 270), burst]));
    expect(withBurst.ratio).toBeGreaterThan(1.3);
    expect(withBurst.increase).toBeCloseTo(0.005, 3);
  });

  it('uses Fisher\'s exact test on the pooled counts when errors are few', () => {
    const t = sequentialErrorTest([{ canaryRequests: 200, canaryErrors: 3, baselineRequests: 1800, baselineErrors: 2 }], 0.002);
    expect(t.method).toBe('fisher-exact');
    expect(t.pValue).toBeGreaterThan(0);
    expect(t.pValue).toBeLessThan(0.01);
  });

  it('does not let an interval without errors outweigh the rest', () => {
    const quiet: ErrorCounts = { canaryRequests: 500, canaryErrors: 0, baselineRequests: 4500, baselineErrors: 0 };
    const t = sequentialErrorTest([calm(60, 270), calm(62, 268), quiet], 0.002);
    expect(t.z).toBeGreaterThan(t.boundary);
  });
});

describe('the judge over an analysis run', () => {
  const slos = { maxErrorRate: 0.05 };
  const at = new Date('2026-01-01T00:00:00Z');

  describe('when a doubled error rate is too small to see in any one interval', () => {
    // 1800 canary requests per interval (300 requests/s, 10% canary, 60 s), baseline 0.5%, canary 1%.
    const profile = { ...DEFAULT_PROFILE, totalRps: 300, burstProbability: 0, canaryErrorMultiplier: 2, maxLatencySamples: 0 };

    it('fails once the intervals together show it, with the numbers of the whole run', () => {
      const r = rng(7);
      const history: ErrorCounts[] = [];
      let failedAt: number | undefined;
      let numbers: Record<string, unknown> = {};
      for (let k = 1; k <= 8 && failedAt === undefined; k++) {
        const { canary, baseline } = simulateInterval(r, profile);
        const v = judge({ canary, baseline, slos, at, history });
        history.push(errorCountsOf(canary, baseline));
        if (v.outcome === 'fail') {
          failedAt = k;
          numbers = v.slos[0]!.numbers;
          expect(v.summary).toMatch(/over \d+ intervals .*boundary/);
        }
      }
      expect(failedAt).toBeDefined();
      expect(failedAt!).toBeGreaterThan(1);
      expect(numbers).toMatchObject({ look: failedAt, method: 'sequential stratified-z', sequentialAlpha: 0.002 });
      expect(Number(numbers.runCanaryRequests)).toBeGreaterThan(1700 * failedAt!);
      expect(Number(numbers.z)).toBeGreaterThanOrEqual(Number(numbers.boundary));
      expect(Number(numbers.pValue)).toBeLessThanOrEqual(Number(numbers.nominalAlpha));
    });
  });

  describe('when a healthy canary is judged for many intervals with noise bursts', () => {
    it('never fails the error-rate comparison (seeded)', () => {
      const profile = { ...DEFAULT_PROFILE, burstProbability: 0.2, maxLatencySamples: 0 };
      for (const seed of [1, 2, 3, 4, 5]) {
        const r = rng(seed);
        const history: ErrorCounts[] = [];
        for (let k = 1; k <= 30; k++) {
          const { canary, baseline } = simulateInterval(r, profile);
          const v = judge({ canary, baseline, slos: {}, at, history });
          history.push(errorCountsOf(canary, baseline));
          expect({ seed, k, outcome: v.outcome }).toEqual({ seed, k, outcome: 'pass' });
        }
      }
    });
  });

  it('keeps too few requests inconclusive, whatever the run has seen', () => {
    const history = [calmCounts(), calmCounts()];
    const v = judge({ canary: { requests: 40, errors: 20 }, baseline: { requests: 400, errors: 2 }, slos, at, history });
    expect(v.outcome).toBe('inconclusive');
    expect(v.summary).toMatch(/too few requests/);
  });

  it('gives the per-interval tests their share of alpha at the look', () => {
    const v = judge({ canary: { requests: 6000, errors: 30 }, baseline: { requests: 54000, errors: 270 }, slos, at, history: [calmCounts(), calmCounts()] });
    expect(v.slos[0]!.numbers.alpha).toBeCloseTo(alphaSpentAt(0.002, 3), 8);
  });
});

function calmCounts(): ErrorCounts {
  return { canaryRequests: 6000, canaryErrors: 30, baselineRequests: 54000, baselineErrors: 270 };
}

describe('the analysis provider across a run', () => {
  const ref = { environment: 'staging', service: 'web' };
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const minute = 60_000;

  /** One minute of traffic into the request log from `start`: 2000 canary and 8000 stable requests. */
  function traffic(log: ProxyRequestLog, start: number, canaryErrorEvery: number): void {
    for (const [track, count, every] of [['stable', 8000, 200], ['canary', 2000, canaryErrorEvery]] as [Track, number, number][]) {
      for (let i = 0; i < count; i++) log.record(ref, track, { at: start + (minute * i) / count + 1, status: (i + 1) % every === 0 ? 503 : 200, latencyMs: 20 });
    }
  }

  function ctx(startMinute: number, extra: Partial<AnalysisContext> = {}): AnalysisContext {
    return { ...ref, slos: {}, settings: {}, start: new Date(t0 + startMinute * minute), end: new Date(t0 + (startMinute + 1) * minute), ...extra };
  }

  function lookOf(v: { slos: { numbers: Record<string, unknown> }[] }): unknown {
    return v.slos[0]!.numbers.look;
  }

  it('judges contiguous windows as one run, and a window that does not continue it as a new run', async () => {
    const log = new ProxyRequestLog({ maxAgeMs: 365 * 24 * 3600_000, maxSamples: 1_000_000 });
    for (let m = 0; m < 6; m++) traffic(log, t0 + m * minute, 200);
    const provider = createAnalysisProvider({ requestLog: log });
    expect(lookOf(await provider.analyze(ctx(0)))).toBe(1);
    expect(lookOf(await provider.analyze(ctx(1)))).toBe(2);
    // The same window asked again (a replayed intent) is not counted twice.
    expect(lookOf(await provider.analyze(ctx(1)))).toBe(2);
    expect(lookOf(await provider.analyze(ctx(2)))).toBe(3);
    // A gap: a new run.
    expect(lookOf(await provider.analyze(ctx(4)))).toBe(1);
    // Another step's run is its own.
    expect(lookOf(await provider.analyze(ctx(5, { label: 'preview' })))).toBe(1);
  });

  it('keeps the chain through a window whose metrics could not be read, without a stratum for it', async () => {
    const log = new ProxyRequestLog({ maxAgeMs: 365 * 24 * 3600_000, maxSamples: 1_000_000 });
    for (let m = 0; m < 3; m++) traffic(log, t0 + m * minute, 200);
    const provider = createAnalysisProvider({ requestLog: log });
    expect(lookOf(await provider.analyze(ctx(0)))).toBe(1);
    const broken = await provider.analyze(ctx(1, { settings: { provider: 'prometheus' } }));
    expect(broken.outcome).toBe('inconclusive');
    expect(lookOf(await provider.analyze(ctx(2)))).toBe(2);
  });

  it('judges each window after a blue-green switch alone (the baseline window is the same every time)', async () => {
    const log = new ProxyRequestLog({ maxAgeMs: 365 * 24 * 3600_000, maxSamples: 1_000_000 });
    for (let m = 0; m < 3; m++) traffic(log, t0 + m * minute, 200);
    const provider = createAnalysisProvider({ requestLog: log });
    const switchedAt = new Date(t0 + minute);
    const first = await provider.analyze(ctx(1, { label: 'postSwitch', switchedAt }));
    const second = await provider.analyze(ctx(2, { label: 'postSwitch', switchedAt }));
    expect(lookOf(first)).toBeUndefined();
    expect(lookOf(second)).toBeUndefined();
  });

  it('fails a doubled error rate that no single window shows, from the second window on', async () => {
    // 2000 canary requests a minute at 1% against 0.5%: rarely significant in one window at the first look's level.
    const log = new ProxyRequestLog({ maxAgeMs: 365 * 24 * 3600_000, maxSamples: 1_000_000 });
    for (let m = 0; m < 6; m++) traffic(log, t0 + m * minute, 100);
    const provider = createAnalysisProvider({ requestLog: log });
    const outcomes: string[] = [];
    for (let m = 0; m < 6; m++) outcomes.push((await provider.analyze(ctx(m))).outcome);
    // Alone, each window is short of the first look's boundary (z 2.59 < 3.03); two windows together are over
    // the second look's (3.66 >= 3.34), and the evidence keeps growing.
    expect(outcomes).toEqual(['pass', 'fail', 'fail', 'fail', 'fail', 'fail']);
  });
});

describe('the cumulative test on counts from Prometheus', () => {
  it('takes fractional counts (increase() extrapolates) in its exact test too', () => {
    const t = sequentialErrorTest([{ canaryRequests: 200.4, canaryErrors: 3.2, baselineRequests: 1799.6, baselineErrors: 1.8 }], 0.002);
    expect(t.method).toBe('fisher-exact');
    expect(t.pValue).toBeGreaterThan(0);
    expect(t.pValue).toBeLessThan(0.05);
  });
});
