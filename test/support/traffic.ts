/**
 * Synthetic per-track traffic for judging the judge (tests and bench/judge.ts). Seeded, so every run is
 * repeatable. Arrivals are a Poisson process split by outcome (errors and successes are independent Poisson
 * counts, which is exact for a Poisson process); latencies are log-normal. Noise bursts hit both tracks for
 * `burst.seconds` of an interval: a higher error rate and slower answers, as a shared dependency would cause.
 *
 * Latency samples: the judge ranks at most `maxLatencySamples` per track (an even subsample), so the simulator
 * draws that many (a random subsample of iid draws has the same distribution) with the burst share of them.
 */
import type { TrackMetrics } from '../../controller/analysis/index.js';

export type Rng = () => number;

/** xoshiro128** seeded by splitmix32: fast, 2^128 period, good enough for Monte Carlo. */
export function rng(seed: number): Rng {
  let s = seed >>> 0;
  const splitmix = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  return () => {
    const result = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result / 4294967296;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Poisson(mean): Knuth's product method below 10, Hörmann's PTRS transformed rejection above. */
export function poisson(r: Rng, mean: number): number {
  if (mean <= 0) return 0;
  if (mean < 10) {
    const limit = Math.exp(-mean);
    let k = 0;
    let p = r();
    while (p > limit) {
      k++;
      p *= r();
    }
    return k;
  }
  const slam = Math.sqrt(mean);
  const loglam = Math.log(mean);
  const b = 0.931 + 2.53 * slam;
  const a = -0.059 + 0.02483 * b;
  const invalpha = 1.1239 + 1.1328 / (b - 3.4);
  const vr = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const u = r() - 0.5;
    const v = r();
    const us = 0.5 - Math.abs(u);
    const k = Math.floor(((2 * a) / us + b) * u + mean + 0.43);
    if (us >= 0.07 && v <= vr) return k;
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (Math.log(v) + Math.log(invalpha) - Math.log(a / (us * us) + b) <= -mean + k * loglam - logFactorial(k)) return k;
  }
}

const SMALL_LOG_FACTORIALS = (() => {
  const out = [0];
  for (let i = 1; i < 20; i++) out.push(out[i - 1]! + Math.log(i));
  return out;
})();

function logFactorial(k: number): number {
  if (k < 20) return SMALL_LOG_FACTORIALS[k]!;
  const n = k + 1;
  // Stirling series for log Γ(n).
  return (n - 0.5) * Math.log(n) - n + 0.5 * Math.log(2 * Math.PI) + 1 / (12 * n) - 1 / (360 * n ** 3) + 1 / (1260 * n ** 5);
}

function standardNormal(r: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

export interface TrafficProfile {
  /** Requests per second over both tracks. */
  totalRps: number;
  /** Share of traffic on the canary (0.1 = 10%). */
  canaryShare: number;
  intervalSeconds: number;
  baselineErrorRate: number;
  /** The canary's error rate is the baseline's times this (2 = a canary that doubles it). */
  canaryErrorMultiplier: number;
  latencyMedianMs: number;
  latencySigma: number;
  canaryLatencyMultiplier: number;
  /** Chance that an interval holds a noise burst on both tracks. */
  burstProbability: number;
  burstSeconds: number;
  burstErrorRate: number;
  burstLatencyMultiplier: number;
  maxLatencySamples: number;
}

export const DEFAULT_PROFILE: TrafficProfile = {
  totalRps: 1000,
  canaryShare: 0.1,
  intervalSeconds: 60,
  baselineErrorRate: 0.005,
  canaryErrorMultiplier: 1,
  latencyMedianMs: 40,
  latencySigma: 0.6,
  canaryLatencyMultiplier: 1,
  burstProbability: 0.2,
  burstSeconds: 30,
  burstErrorRate: 0.04,
  burstLatencyMultiplier: 3,
  maxLatencySamples: 5000,
};

export interface SimulatedInterval {
  canary: TrackMetrics;
  baseline: TrackMetrics;
  burst: boolean;
}

export function simulateInterval(r: Rng, p: TrafficProfile): SimulatedInterval {
  const burst = r() < p.burstProbability;
  const burstSeconds = burst ? Math.min(p.burstSeconds, p.intervalSeconds) : 0;
  const calmSeconds = p.intervalSeconds - burstSeconds;
  const canaryExtra = p.baselineErrorRate * (p.canaryErrorMultiplier - 1);
  const track = (rps: number, extraError: number, latencyMultiplier: number): TrackMetrics => {
    const calmRate = Math.min(1, p.baselineErrorRate + extraError);
    const burstRate = Math.min(1, p.burstErrorRate + extraError);
    const calmErrors = poisson(r, rps * calmSeconds * calmRate);
    const calmOk = poisson(r, rps * calmSeconds * (1 - calmRate));
    const burstErrors = poisson(r, rps * burstSeconds * burstRate);
    const burstOk = poisson(r, rps * burstSeconds * (1 - burstRate));
    const requests = calmErrors + calmOk + burstErrors + burstOk;
    const samples = Math.min(requests, p.maxLatencySamples);
    const burstShare = requests > 0 ? (burstErrors + burstOk) / requests : 0;
    const latenciesMs = new Array<number>(samples);
    const median = p.latencyMedianMs * latencyMultiplier;
    for (let i = 0; i < samples; i++) {
      const slow = r() < burstShare ? p.burstLatencyMultiplier : 1;
      latenciesMs[i] = median * slow * Math.exp(p.latencySigma * standardNormal(r));
    }
    return { requests, errors: calmErrors + burstErrors, latenciesMs };
  };
  return {
    canary: track(p.totalRps * p.canaryShare, canaryExtra, p.canaryLatencyMultiplier),
    baseline: track(p.totalRps * (1 - p.canaryShare), 0, 1),
    burst,
  };
}

/** The comparison: a fixed-threshold rule as Argo Rollouts / Flagger users write it (fail when the canary's error rate is over 1%). */
export function thresholdOutcome(canary: TrackMetrics, threshold = 0.01): 'pass' | 'fail' | 'inconclusive' {
  if (!(canary.requests > 0)) return 'inconclusive';
  return canary.errors / canary.requests > threshold ? 'fail' : 'pass';
}
