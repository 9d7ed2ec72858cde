/**
 * The quality of the judge, measured on simulated canaries (test/support/traffic.ts: Poisson arrivals,
 * log-normal latency, baseline error rate 0.5%, 30 s noise bursts on both tracks), and the same runs judged by
 * a fixed-threshold rule (fail when the canary error rate is over 1%, as Argo Rollouts / Flagger users write it),
 * both through the same run logic (failureLimit 2 consecutive fails → rollback).
 *  1. False rollbacks of healthy canaries (each canary: 10 analysis intervals).
 *  2. Detection of a canary whose error rate is 2x baseline at 10% traffic: share within 3 intervals, median.
 *  3. The same at other traffic levels and burst frequencies (fewer runs).
 *  4. Judge CPU per interval, and the time to make the revert commit on main (lib/rollback, real repo).
 * Run: node --import tsx bench/judge.ts   (BENCH_RUNS=1000; writes bench/results/analysis.md)
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_JUDGE_OPTIONS, judge, recordVerdict, startAnalysisRun, type Outcome } from '../controller/analysis/index.js';
import { createLocalRollback } from '../lib/rollback/index.js';
import type { Slos } from '../schemas/index.js';
import { DEFAULT_PROFILE, rng, simulateInterval, thresholdOutcome, type TrafficProfile } from '../test/support/traffic.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 1000);
const SWEEP_RUNS = Number(process.env.BENCH_SWEEP_RUNS ?? 200);
const INTERVALS = 10;
const FAILURE_LIMIT = 2;
const slos: Slos = { maxErrorRate: 0.02, latency: [{ quantile: 0.99, maxMs: 1000 }] };
const at = new Date('2026-01-01T00:00:00Z');
/** "Occasional": a 30 s burst in one interval out of ten. */
const PROFILE: TrafficProfile = { ...DEFAULT_PROFILE, burstProbability: 0.1 };

interface Canary {
  slipway?: number;
  threshold?: number;
}

/** One simulated canary judged by both rules on the same traffic; the interval (1-based) each would roll back at. */
function canary(seed: number, profile: TrafficProfile, judgeTimes: number[]): Canary {
  const r = rng(seed);
  const runs = { slipway: startAnalysisRun(), threshold: startAnalysisRun() };
  const out: Canary = {};
  const limits = { failureLimit: FAILURE_LIMIT, inconclusiveLimit: 1_000_000, count: 1_000_000 };
  for (let i = 1; i <= INTERVALS && (out.slipway === undefined || out.threshold === undefined); i++) {
    const { canary: c, baseline: b } = simulateInterval(r, profile);
    const t0 = performance.now();
    const v = judge({ canary: c, baseline: b, slos, at });
    judgeTimes.push(performance.now() - t0);
    const outcomes: Record<keyof Canary, Outcome> = { slipway: v.outcome, threshold: thresholdOutcome(c) };
    for (const key of ['slipway', 'threshold'] as const) {
      if (out[key] !== undefined) continue;
      const step = recordVerdict(runs[key], { outcome: outcomes[key], summary: '', slos: [], at: '' }, limits);
      runs[key] = step.run;
      if (step.decision.kind === 'breach') out[key] = i;
    }
  }
  return out;
}

interface Stats {
  rollbackRate: number;
  within3: number;
  median: number | undefined;
  never: number;
}

function stats(results: (number | undefined)[]): Stats {
  const hits = results.filter((x): x is number => x !== undefined);
  return {
    rollbackRate: hits.length / results.length,
    within3: results.filter((x) => x !== undefined && x <= 3).length / results.length,
    median: medianOfAll(results),
    never: results.filter((x) => x === undefined).length / results.length,
  };
}

/** Median intervals to detection over all runs (a run that never breached counts as "more than INTERVALS"). */
function medianOfAll(results: (number | undefined)[]): number | undefined {
  const sorted = results.map((x) => x ?? Infinity).sort((a, b) => a - b);
  const m = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return Number.isFinite(m) ? m : undefined;
}

function simulate(profile: TrafficProfile, runs: number, seedBase: number, judgeTimes: number[]): { slipway: Stats; threshold: Stats } {
  const slipway: (number | undefined)[] = [];
  const threshold: (number | undefined)[] = [];
  for (let i = 0; i < runs; i++) {
    const c = canary(seedBase + i, profile, judgeTimes);
    slipway.push(c.slipway);
    threshold.push(c.threshold);
  }
  return { slipway: stats(slipway), threshold: stats(threshold) };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const med = (x: number | undefined) => (x === undefined ? `> ${INTERVALS}` : String(x));

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** Revert-commit timing on a real repository with history (200 commits, later unrelated ones on top). */
async function rollbackTimings(trials: number): Promise<{ clean: number[]; explicit: number[] }> {
  const out = { clean: [] as number[], explicit: [] as number[] };
  const digest = (c: string) => `sha256:${c.repeat(64)}`;
  const service = (d: string, replicas = 2) => `apiVersion: slipway.dev/v1\nkind: Service\nmetadata:\n  name: checkout\nspec:\n  image:\n    repository: 127.0.0.1:5000/checkout\n    digest: ${d}\n  replicas: ${replicas}\n  port: 8080\n`;
  for (const mode of ['clean', 'explicit'] as const) {
    for (let t = 0; t < trials; t++) {
      const dir = mkdtempSync(join(tmpdir(), 'slipway-bench-rollback-'));
      const env = { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b' };
      const g = (...args: string[]) => execFileSync('git', args, { cwd: dir, env, stdio: 'pipe' });
      g('init', '-q', '-b', 'main');
      mkdirSync(join(dir, 'staging/services'), { recursive: true });
      // 200 commits of history: other services changing.
      const script = [`cd ${JSON.stringify(dir)}`];
      for (let i = 0; i < 200; i++) script.push(`echo "replicas: ${i}" > staging/services/other-${i % 10}.yaml && git add -A && git commit -qm "other ${i}"`);
      writeFileSync(join(dir, 'staging/services/checkout.yaml'), service(digest('a')));
      execFileSync('sh', ['-c', script.join('\n')], { env, stdio: 'pipe' });
      writeFileSync(join(dir, 'staging/services/checkout.yaml'), service(digest('b')));
      g('commit', '-qam', 'Promote checkout to b');
      if (mode === 'explicit') {
        writeFileSync(join(dir, 'staging/services/checkout.yaml'), service(digest('b'), 3));
        g('commit', '-qam', 'Scale checkout');
      }
      for (let i = 0; i < 20; i++) {
        writeFileSync(join(dir, `staging/services/other-${i % 10}.yaml`), `replicas: ${1000 + i}\n`);
        g('commit', '-qam', `later ${i}`);
      }
      const t0 = performance.now();
      const result = await createLocalRollback({ fs, dir }).revert({ environment: 'staging', service: 'checkout', badDigest: digest('b'), reason: 'bench', actor: 'bench', quarantine: true });
      out[mode].push(performance.now() - t0);
      if (result.explicit !== (mode === 'explicit')) throw new Error(`expected a ${mode} revert`);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}

async function main(): Promise<void> {
  const judgeTimes: number[] = [];
  const started = Date.now();
  const healthy = simulate(PROFILE, RUNS, 1_000_000, judgeTimes);
  const doubled = simulate({ ...PROFILE, canaryErrorMultiplier: 2 }, RUNS, 2_000_000, judgeTimes);

  const sweep: string[] = [];
  for (const totalRps of [300, 1000, 3000]) {
    for (const burstProbability of [0, 0.1, 0.25]) {
      const p = { ...PROFILE, totalRps, burstProbability };
      const h = simulate(p, SWEEP_RUNS, 3_000_000 + totalRps * 10 + burstProbability * 100, judgeTimes);
      const d = simulate({ ...p, canaryErrorMultiplier: 2 }, SWEEP_RUNS, 4_000_000 + totalRps * 10 + burstProbability * 100, judgeTimes);
      sweep.push(
        `| ${totalRps} | ${(totalRps * 0.1 * 60).toFixed(0)} | ${pct(burstProbability)} | ${pct(h.slipway.rollbackRate)} | ${pct(d.slipway.within3)} | ${med(d.slipway.median)} | ${pct(h.threshold.rollbackRate)} | ${pct(d.threshold.within3)} | ${med(d.threshold.median)} |`,
      );
    }
  }
  const simSeconds = (Date.now() - started) / 1000;
  const rollback = await rollbackTimings(Number(process.env.BENCH_ROLLBACK_TRIALS ?? 10));

  const lines = [
    '# Analysis: the quality of the judge, and the revert commit',
    '',
    `- Command: \`node --import tsx bench/judge.ts\` (BENCH_RUNS=${RUNS}, BENCH_SWEEP_RUNS=${SWEEP_RUNS})`,
    `- Machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}), Node ${process.version}, shared with other work; date ${new Date().toISOString()}`,
    `- Traffic (test/support/traffic.ts, seeded): ${PROFILE.totalRps} requests/s in all, ${pct(PROFILE.canaryShare)} on the canary, ${PROFILE.intervalSeconds} s analysis intervals (${PROFILE.totalRps * PROFILE.canaryShare * PROFILE.intervalSeconds} canary requests per interval), Poisson arrivals, baseline error rate ${pct(PROFILE.baselineErrorRate)}, log-normal latency (median ${PROFILE.latencyMedianMs} ms, sigma ${PROFILE.latencySigma}); noise bursts of ${PROFILE.burstSeconds} s on both tracks (error rate ${pct(PROFILE.burstErrorRate)}, latency x${PROFILE.burstLatencyMultiplier}) in ${pct(PROFILE.burstProbability)} of intervals.`,
    `- SLOs: maxErrorRate 2%, p99 < 1000 ms, compare to baseline (judge defaults: one-sided alpha ${DEFAULT_JUDGE_OPTIONS.alpha}, error fail also needs >= ${DEFAULT_JUDGE_OPTIONS.minErrorRatio}x and >= +${DEFAULT_JUDGE_OPTIONS.minErrorIncrease * 100} points, latency fail >= +${DEFAULT_JUDGE_OPTIONS.latencyMargin * 100}% and >= ${DEFAULT_JUDGE_OPTIONS.minLatencyIncreaseMs} ms).`,
    `- Each canary is judged for up to ${INTERVALS} intervals; a rollback is ${FAILURE_LIMIT} consecutive failed intervals (failureLimit ${FAILURE_LIMIT}) for both rules. Inconclusive intervals neither count nor clear a streak.`,
    `- The fixed-threshold rule: fail when the canary's error rate is over 1% (Argo Rollouts AnalysisTemplate \`result[0] > 0.01\` style), same traffic, same run logic.`,
    '',
    `## Healthy canaries (${RUNS} canaries x ${INTERVALS} intervals)`,
    '',
    '| | false rollbacks | target |',
    '| --- | --- | --- |',
    `| Slipway judge | ${pct(healthy.slipway.rollbackRate)} (${Math.round(healthy.slipway.rollbackRate * RUNS)}/${RUNS}) | < 0.5% |`,
    `| fixed threshold (1%) | ${pct(healthy.threshold.rollbackRate)} (${Math.round(healthy.threshold.rollbackRate * RUNS)}/${RUNS}) | |`,
    '',
    `## Canary with 2x the baseline error rate, 10% traffic (${RUNS} canaries)`,
    '',
    '| | detected within 3 intervals | median intervals to rollback | never detected in 10 | target |',
    '| --- | --- | --- | --- | --- |',
    `| Slipway judge | ${pct(doubled.slipway.within3)} | ${med(doubled.slipway.median)} | ${pct(doubled.slipway.never)} | > 99% within 3 |`,
    `| fixed threshold (1%) | ${pct(doubled.threshold.within3)} | ${med(doubled.threshold.median)} | ${pct(doubled.threshold.never)} | |`,
    '',
    `## Traffic and burst sweep (${SWEEP_RUNS} healthy + ${SWEEP_RUNS} doubled canaries per row)`,
    '',
    '| requests/s | canary requests / interval | intervals with a burst | Slipway false rollbacks | Slipway 2x within 3 | Slipway median | threshold false rollbacks | threshold 2x within 3 | threshold median |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...sweep,
    '',
    `Simulation and judging took ${simSeconds.toFixed(0)} s. Judge CPU per interval (both tracks, ${PROFILE.maxLatencySamples} latency samples each): median ${quantile(judgeTimes, 0.5).toFixed(2)} ms, p99 ${quantile(judgeTimes, 0.99).toFixed(2)} ms.`,
    '',
    '## Revert commit on main (lib/rollback, real repository)',
    '',
    `A repository with 200 commits of history, the bad promotion, then 20 later unrelated commits; \`createLocalRollback().revert()\` (find the introducing commit, 3-way revert, quarantine, commit, compare-and-swap main, update the checked-out tree). ${rollback.clean.length} trials each.`,
    '',
    '| path | median ms | max ms | target |',
    '| --- | --- | --- | --- |',
    `| git-revert semantics (clean) | ${quantile(rollback.clean, 0.5).toFixed(0)} | ${Math.max(...rollback.clean).toFixed(0)} | < 2000 ms breach → revert on main |`,
    `| explicit digest write-back (conflict) | ${quantile(rollback.explicit, 0.5).toFixed(0)} | ${Math.max(...rollback.explicit).toFixed(0)} | |`,
    '',
    'Breach verdict → all traffic on stable is the local target\'s `setWeight(0)` (bench/results/localtarget.md), not measured here.',
    '',
  ];
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/analysis.md', lines.join('\n'));
  process.stdout.write(lines.join('\n'));
}

await main();
