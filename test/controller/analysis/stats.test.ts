import { compareProportions, exceedsLimit, mannWhitneyU, quantileSorted, sortedCopy } from '../../../controller/analysis/index.js';

// Reference values computed with scipy.stats (mannwhitneyu asymptotic + continuity, fisher_exact greater).
describe('analysis statistics', () => {
  describe('Mann-Whitney U with ties', () => {
    it('matches scipy for a one-sided test with tied values', () => {
      const canary = sortedCopy([3, 4, 4, 5, 6, 7, 7, 8, 9, 12]);
      const baseline = sortedCopy([1, 2, 2, 3, 4, 5, 5, 6, 7, 7, 8]);
      const r = mannWhitneyU(canary, baseline);
      expect(r.u).toBe(76.5);
      expect(r.pValue).toBeCloseTo(0.06818410297441165, 10);
      expect(r.effect).toBeCloseTo(76.5 / 110, 12);
    });

    it('gives p = 1 direction-wise when the canary is faster', () => {
      const r = mannWhitneyU(sortedCopy([1, 2, 3, 4, 5, 6]), sortedCopy([10, 11, 12, 13, 14, 15]));
      expect(r.u).toBe(0);
      expect(r.pValue).toBeGreaterThan(0.99);
    });

    it('is not significant when every value is tied', () => {
      const r = mannWhitneyU(sortedCopy([5, 5, 5]), sortedCopy([5, 5, 5, 5]));
      expect(r.pValue).toBe(1);
      expect(r.effect).toBe(0.5);
    });
  });

  describe('error proportions', () => {
    it('uses the pooled z-test when counts are large', () => {
      const r = compareProportions(30, 1000, 15, 1000);
      expect(r.method).toBe('z-test');
      expect(r.z).toBeCloseTo(2.2618, 3);
      expect(r.pValue).toBeCloseTo(0.01186, 4);
    });

    it('uses Fisher exact for small counts and matches scipy', () => {
      const r = compareProportions(3, 10, 0, 10);
      expect(r.method).toBe('fisher-exact');
      expect(r.pValue).toBeCloseTo(0.10526315789473684, 10);
    });

    it('gives p = 1 when nobody erred', () => {
      expect(compareProportions(0, 500, 0, 5000).pValue).toBe(1);
    });
  });

  describe('rate over a limit', () => {
    it('is significant only well above the limit', () => {
      expect(exceedsLimit(12, 1000, 0.01).pValue).toBeGreaterThan(0.2);
      expect(exceedsLimit(40, 1000, 0.01).pValue).toBeLessThan(1e-6);
    });
  });

  describe('quantiles', () => {
    it('interpolates like numpy', () => {
      const s = sortedCopy([10, 1, 7, 3, 5]);
      expect(quantileSorted(s, 0.5)).toBe(5);
      expect(quantileSorted(s, 0.9)).toBeCloseTo(8.8, 12);
    });

    it('strides through huge samples without losing the distribution', () => {
      const values = Array.from({ length: 100_000 }, (_, i) => i);
      const s = sortedCopy(values, 1000);
      expect(s.length).toBe(1000);
      expect(quantileSorted(s, 0.5)).toBeGreaterThan(49_000);
      expect(quantileSorted(s, 0.5)).toBeLessThan(51_000);
    });
  });
});
