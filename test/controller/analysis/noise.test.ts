/**
 * The judge does not cry wolf: seeded synthetic traffic (Poisson arrivals, log-normal latency, noise bursts on
 * both tracks) judged interval after interval through the real run logic.
 */
import { judge, recordVerdict, startAnalysisRun, verdictOf, type AnalysisDecision, type Outcome, type TrackMetrics } from '../../../controller/analysis/index.js';
import type { Slos } from '../../../schemas/index.js';
import { DEFAULT_PROFILE, rng, simulateInterval, thresholdOutcome, type TrafficProfile } from '../../support/traffic.js';

const slos: Slos = { maxErrorRate: 0.02, latency: [{ quantile: 0.99, maxMs: 1000 }] };
const at = new Date('2026-01-01T00:00:00Z');

interface Played {
  /** Interval (1-based) of the breach, or undefined. */
  breachAt?: number;
  outcomes: Outcome[];
  /** Outcomes of the intervals that held a noise burst. */
  burstOutcomes: Outcome[];
}

/** Judge `intervals` windows with a run that never passes early, so every window counts. */
function play(seed: number, profile: TrafficProfile, intervals: number, judgeWith: (c: TrackMetrics, b: TrackMetrics) => Outcome, failureLimit = 2): Played {
  const r = rng(seed);
  let run = startAnalysisRun();
  const outcomes: Outcome[] = [];
  const burstOutcomes: Outcome[] = [];
  for (let i = 1; i <= intervals; i++) {
    const { canary, baseline, burst } = simulateInterval(r, profile);
    const outcome = judgeWith(canary, baseline);
    outcomes.push(outcome);
    if (burst) burstOutcomes.push(outcome);
    const verdict = verdictOf([{ slo: 'sim', outcome, summary: outcome, numbers: {} }], at.toISOString());
    const step: { decision: AnalysisDecision; run: typeof run } = recordVerdict(run, verdict, { failureLimit, inconclusiveLimit: 1_000_000, count: 1_000_000 });
    run = step.run;
    if (step.decision.kind === 'breach') return { breachAt: i, outcomes, burstOutcomes };
  }
  return { outcomes, burstOutcomes };
}

/** Fewer raw latency samples than the judge's 5000 keep this file quick; the bench uses the full 5000. */
const HEALTHY = { ...DEFAULT_PROFILE, maxLatencySamples: 1000 };

const slipwayJudge = (canary: TrackMetrics, baseline: TrackMetrics) => judge({ canary, baseline, slos, at }).outcome;
const thresholdJudge = (canary: TrackMetrics) => thresholdOutcome(canary);

describe('the judge over many windows of synthetic traffic', () => {
  describe('when a healthy canary sees noise bursts on both tracks', () => {
    it.each([1, 2, 3])('never breaches in 120 intervals (seed %i)', (seed) => {
      const played = play(seed, HEALTHY, 120, slipwayJudge);
      expect(played.breachAt).toBeUndefined();
      // A single failed interval happens now and then (one-sided alpha 0.005 per test, gated by effect size);
      // failureLimit asks for two in a row, which does not happen.
      expect(played.outcomes.filter((o) => o === 'fail').length).toBeLessThanOrEqual(4);
      // The bursts were there, and never counted against the canary.
      expect(played.burstOutcomes.length).toBeGreaterThan(10);
      expect(played.burstOutcomes.filter((o) => o === 'fail')).toEqual([]);
    });

    it('where a fixed 1% error-rate threshold rolls the same healthy canary back', () => {
      const played = play(1, HEALTHY, 120, thresholdJudge);
      expect(played.breachAt).toBeDefined();
      expect(played.burstOutcomes.filter((o) => o === 'fail').length).toBeGreaterThan(5);
    });
  });

  describe('when the canary error rate doubles (10% of 2000 rps, no bursts)', () => {
    const profile = { ...HEALTHY, totalRps: 2000, canaryErrorMultiplier: 2, burstProbability: 0 };
    it.each([1, 2, 3, 4, 5, 6, 7, 8])('breaches within failureLimit windows (seed %i)', (seed) => {
      expect(play(seed, profile, 10, slipwayJudge, 2).breachAt).toBe(2);
    });
  });

  describe('when the canary error rate doubles (2000 rps) and noise bursts hit both tracks', () => {
    const profile = { ...HEALTHY, totalRps: 2000, canaryErrorMultiplier: 2 };
    it('breaches every time, and only intervals with a burst delay it', () => {
      for (let seed = 100; seed < 120; seed++) {
        const r = rng(seed);
        let run = startAnalysisRun();
        let breachAt: number | undefined;
        const delayedBy: boolean[] = [];
        for (let i = 1; i <= 10 && breachAt === undefined; i++) {
          const { canary, baseline, burst } = simulateInterval(r, profile);
          const v = judge({ canary, baseline, slos, at });
          if (v.outcome !== 'fail') delayedBy.push(burst);
          const step = recordVerdict(run, v, { failureLimit: 2, inconclusiveLimit: 1_000_000, count: 1_000_000 });
          run = step.run;
          if (step.decision.kind === 'breach') breachAt = i;
        }
        expect({ seed, breached: breachAt !== undefined }).toEqual({ seed, breached: true });
        expect({ seed, delayedOnlyByBursts: delayedBy.every(Boolean) }).toEqual({ seed, delayedOnlyByBursts: true });
      }
    });
  });

  describe('when the canary is 50% slower', () => {
    const profile = { ...DEFAULT_PROFILE, canaryLatencyMultiplier: 1.5, burstProbability: 0 };
    it.each([1, 2, 3])('breaches within failureLimit windows on the rank test (seed %i)', (seed) => {
      const r = rng(seed);
      const { canary, baseline } = simulateInterval(r, profile);
      const v = judge({ canary, baseline, slos, at });
      const latency = v.slos.find((s) => s.slo === 'latency p99')!;
      expect(latency.outcome).toBe('fail');
      expect(latency.summary).toMatch(/Mann-Whitney/);
      expect(play(seed, profile, 10, slipwayJudge, 2).breachAt).toBe(2);
    });
  });
});
