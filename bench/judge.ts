/**
 * The quality of the judge, measured on simulated canaries (test/support/traffic.ts: Poisson arrivals,
 * log-normal latency, baseline error rate 0.5%, 30 s noise bursts on both tracks), each judged for up to 10
 * analysis intervals by several rules on the same traffic:
 *  - the Slipway judge as the controller runs it: the error-rate comparison is cumulative over the run's intervals,
 *    a group-sequential test (controller/analysis/sequential.ts), with failureLimit 1 and 2;
 *  - the previous Slipway judge: every interval tested alone (one-sided alpha 0.005), failureLimit 2;
 *  - a fixed-threshold rule (fail when the canary error rate is over 1%, as Argo Rollouts / Flagger users write
 *    it), failureLimit 1 (Argo's default: any failed measurement) and 2.
 * Reported: false rollbacks of healthy canaries, detection of a canary whose error rate is 2x the baseline at 10%
 * traffic within 3 intervals and the median intervals to detection, each rate with a 95% Wilson interval; a sweep
 * over traffic levels; judge CPU; the time to make the revert commit on main (lib/rollback, real repo).
 * Run: node --import tsx bench/judge.ts   (BENCH_RUNS=2000, BENCH_SWEEP_RUNS=500; writes bench/results/analysis.md)
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_JUDGE_OPTIONS, errorCountsOf, judge, recordVerdict, startAnalysisRun, type ErrorCounts, type Outcome } from '../controller/analysis/index.js';
import { createLocalRollback } from '../lib/rollback/index.js';
import { writeResultsSection } from './analysis-results.js';
import type { Slos } from '../schemas/index.js';
import { DEFAULT_PROFILE, rng, simulateInterval, thresholdOutcome, type TrafficProfile } from '../test/support/traffic.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 2000);
const SWEEP_RUNS = Number(process.env.BENCH_SWEEP_RUNS ?? 300);
/**
 * Raw latency samples per track and interval (the judge ranks at most 5000). Fewer keep the runs affordable on a
 * shared 2-core machine; fewer samples make the latency test noisier, so false rollbacks, if anything, rise.
 */
const LATENCY_SAMPLES = Number(process.env.BENCH_LATENCY_SAMPLES ?? 1000);
const SWEEP_LATENCY_SAMPLES = Number(process.env.BENCH_SWEEP_LATENCY_SAMPLES ?? 500);
const INTERVALS = 10;
const slos: Slos = { maxErrorRate: 0.02, latency: [{ quantile: 0.99, maxMs: 1000 }] };
const at = new Date('2026-01-01T00:00:00Z');
/** "Occasional": a 30 s burst in one interval out of ten. */
const PROFILE: TrafficProfile = { ...DEFAULT_PROFILE, burstProbability: 0.1, maxLatencySamples: LATENCY_SAMPLES };

const RULES = [
  { key: 'seq1', name: 'Slipway, sequential, failureLimit 1', failureLimit: 1 },
  { key: 'seq2', name: 'Slipway, sequential, failureLimit 2 (current default)', failureLimit: 2 },
  { key: 'perInterval', name: 'Slipway, per-interval (previous), failureLimit 2', failureLimit: 2 },
  { key: 'threshold1', name: 'fixed threshold 1%, failureLimit 1', failureLimit: 1 },
  { key: 'threshold2', name: 'fixed threshold 1%, failureLimit 2', failureLimit: 2 },
] as const;
type RuleKey = (typeof RULES)[number]['key'];

/** One simulated canary judged by every rule on the same traffic; the interval (1-based) each would roll back at. */
function canary(seed: number, profile: TrafficProfile, judgeTimes: number[], judged: Slos = slos): Partial<Record<RuleKey, number>> {
  const r = rng(seed);
  const runs = Object.fromEntries(RULES.map((rule) => [rule.key, startAnalysisRun()])) as Record<RuleKey, ReturnType<typeof startAnalysisRun>>;
  const out: Partial<Record<RuleKey, number>> = {};
  const history: ErrorCounts[] = [];
  for (let i = 1; i <= INTERVALS && RULES.some((rule) => out[rule.key] === undefined); i++) {
    const { canary: c, baseline: b } = simulateInterval(r, profile);
    const t0 = performance.now();
    const sequential = judge({ canary: c, baseline: b, slos: judged, at, history });
    judgeTimes.push(performance.now() - t0);
    history.push(errorCountsOf(c, b));
    const perInterval = out.perInterval === undefined ? judge({ canary: c, baseline: b, slos: judged, at }).outcome : 'pass';
    const threshold = thresholdOutcome(c);
    const outcomes: Record<RuleKey, Outcome> = { seq1: sequential.outcome, seq2: sequential.outcome, perInterval, threshold1: threshold, threshold2: threshold };
    for (const rule of RULES) {
      if (out[rule.key] !== undefined) continue;
      const limits = { failureLimit: rule.failureLimit, inconclusiveLimit: 1_000_000, count: 1_000_000 };
      const step = recordVerdict(runs[rule.key], { outcome: outcomes[rule.key], summary: '', slos: [], at: '' }, limits);
      runs[rule.key] = step.run;
      if (step.decision.kind === 'breach') out[rule.key] = i;
    }
  }
  return out;
}

interface Stats {
  runs: number;
  rollbacks: number;
  within3: number;
  median: number | undefined;
  never: number;
}

function stats(results: (number | undefined)[]): Stats {
  return {
    runs: results.length,
    rollbacks: results.filter((x) => x !== undefined).length,
    within3: results.filter((x) => x !== undefined && x <= 3).length,
    median: medianOfAll(results),
    never: results.filter((x) => x === undefined).length,
  };
}

/** Median intervals to detection over all runs (a run that never breached counts as "more than INTERVALS"). */
function medianOfAll(results: (number | undefined)[]): number | undefined {
  const sorted = results.map((x) => x ?? Infinity).sort((a, b) => a - b);
  const m = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return Number.isFinite(m) ? m : undefined;
}

function simulate(profile: TrafficProfile, runs: number, seedBase: number, judgeTimes: number[], judged: Slos = slos): Record<RuleKey, Stats> {
  const results = Object.fromEntries(RULES.map((rule) => [rule.key, [] as (number | undefined)[]])) as Record<RuleKey, (number | undefined)[]>;
  for (let i = 0; i < runs; i++) {
    if (i > 0 && i % 500 === 0) process.stderr.write(`${new Date().toISOString()} ${i}/${runs} canaries (x${profile.canaryErrorMultiplier}, ${profile.totalRps} req/s)\n`);
    const c = canary(seedBase + i, profile, judgeTimes, judged);
    for (const rule of RULES) results[rule.key].push(c[rule.key]);
  }
  return Object.fromEntries(RULES.map((rule) => [rule.key, stats(results[rule.key])])) as Record<RuleKey, Stats>;
}

/** 95% Wilson score interval of k successes in n. */
function wilson(k: number, n: number): [number, number] {
  const z = 1.959964;
  const p = k / n;
  const denom = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denom;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const pct2 = (x: number) => `${(x * 100).toFixed(2)}%`;
const rate = (k: number, n: number) => {
  const [lo, hi] = wilson(k, n);
  return `${pct2(k / n)} (${k}/${n}; 95% CI ${pct2(lo)}–${pct2(hi)})`;
};
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
  const sweepTimes: number[] = [];
  for (const totalRps of [300, 600, 1000, 1500, 2000]) {
    const p = { ...PROFILE, totalRps, maxLatencySamples: SWEEP_LATENCY_SAMPLES };
    const h = simulate(p, SWEEP_RUNS, 3_000_000 + totalRps * 10, sweepTimes);
    const d = simulate({ ...p, canaryErrorMultiplier: 2 }, SWEEP_RUNS, 4_000_000 + totalRps * 10, sweepTimes);
    const cell = (k: RuleKey) => `${pct(h[k].rollbacks / SWEEP_RUNS)} / ${pct(d[k].within3 / SWEEP_RUNS)} / ${med(d[k].median)}`;
    sweep.push(`| ${totalRps} | ${(totalRps * PROFILE.canaryShare * PROFILE.intervalSeconds).toFixed(0)} | ${cell('seq1')} | ${cell('seq2')} | ${cell('perInterval')} | ${cell('threshold1')} | ${cell('threshold2')} |`);
  }
  // Error rate only (no latency SLO, so no latency samples to draw): cheap enough for many runs per traffic level,
  // to say at what traffic the detection target is met.
  const errorOnly: string[] = [];
  const ERROR_ONLY_RUNS = Number(process.env.BENCH_ERROR_ONLY_RUNS ?? 2000);
  for (const totalRps of [400, 600, 800, 1000, 1500, 2000, 2500, 3000, 4000]) {
    const p = { ...PROFILE, totalRps, maxLatencySamples: 0 };
    const errorSlos: Slos = { maxErrorRate: 0.02 };
    const h = simulate(p, ERROR_ONLY_RUNS, 5_000_000 + totalRps * 10, sweepTimes, errorSlos);
    const d = simulate({ ...p, canaryErrorMultiplier: 2 }, ERROR_ONLY_RUNS, 6_000_000 + totalRps * 10, sweepTimes, errorSlos);
    const ci = (k: number, n: number) => {
      const [lo, hi] = wilson(k, n);
      return `${pct2(k / n)} (${pct2(lo)}–${pct2(hi)})`;
    };
    const cell = (k: RuleKey) => `${ci(h[k].rollbacks, ERROR_ONLY_RUNS)} / ${ci(d[k].within3, ERROR_ONLY_RUNS)} / ${med(d[k].median)}`;
    errorOnly.push(`| ${totalRps} | ${(totalRps * PROFILE.canaryShare * PROFILE.intervalSeconds).toFixed(0)} | ${cell('seq1')} | ${cell('seq2')} | ${cell('perInterval')} | ${cell('threshold2')} |`);
  }
  const simSeconds = (Date.now() - started) / 1000;
  const rollback = await rollbackTimings(Number(process.env.BENCH_ROLLBACK_TRIALS ?? 10));

  const o = DEFAULT_JUDGE_OPTIONS;
  const lines = [
    '## The judge',
    '',
    `- Command: \`node --import tsx bench/judge.ts\` (BENCH_RUNS=${RUNS}, BENCH_SWEEP_RUNS=${SWEEP_RUNS}, BENCH_LATENCY_SAMPLES=${LATENCY_SAMPLES}, BENCH_SWEEP_LATENCY_SAMPLES=${SWEEP_LATENCY_SAMPLES})`,
    `- Machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}), Node ${process.version}, shared with other work; date ${new Date().toISOString()}`,
    `- Traffic (test/support/traffic.ts, seeded): ${PROFILE.totalRps} requests/s in all, ${pct(PROFILE.canaryShare)} on the canary, ${PROFILE.intervalSeconds} s analysis intervals (${PROFILE.totalRps * PROFILE.canaryShare * PROFILE.intervalSeconds} canary requests per interval), Poisson arrivals, baseline error rate ${pct(PROFILE.baselineErrorRate)}, log-normal latency (median ${PROFILE.latencyMedianMs} ms, sigma ${PROFILE.latencySigma}); ${LATENCY_SAMPLES} raw latency samples per track and interval; noise bursts of ${PROFILE.burstSeconds} s on both tracks (error rate ${pct(PROFILE.burstErrorRate)}, latency x${PROFILE.burstLatencyMultiplier}) in ${pct(PROFILE.burstProbability)} of intervals. A doubled canary adds the baseline's rate again (+0.5 points) at all times, bursts included.`,
    `- SLOs: maxErrorRate 2%, p99 < 1000 ms, compare to baseline. Practical-effect gates (all rules of the Slipway judge): an error fail needs >= ${o.minErrorRatio}x and >= +${o.minErrorIncrease * 100} points, a latency fail >= +${o.latencyMargin * 100}% and >= ${o.minLatencyIncreaseMs} ms.`,
    `- **Sequential** (what the controller runs since this change): the error-rate comparison at look k uses all k intervals of the run (inverse-variance weighted per-interval differences, so a burst interval weighs less), against a group-sequential boundary that spends the run's one-sided alpha ${o.sequentialAlpha} as alpha·6/(π²k²) per look, exact under equally informative looks (Armitage–McPherson–Rowe recursive integration); the per-interval tests (absolute limits, latency) get the same share alpha_k at look k. **Per-interval** (before): every interval tested alone at one-sided alpha ${o.alpha}.`,
    '- Each canary is judged for up to 10 intervals through the real run logic (controller/analysis/run.ts): a rollback is `failureLimit` consecutive failed intervals; inconclusive intervals neither count nor clear a streak.',
    '- The fixed-threshold rule: fail when the canary\'s error rate is over 1% (Argo Rollouts AnalysisTemplate `result[0] > 0.01` style), same traffic, same run logic.',
    '',
    `### Healthy canaries (${RUNS} canaries x up to ${INTERVALS} intervals)`,
    '',
    '| rule | false rollbacks (95% CI) | target |',
    '| --- | --- | --- |',
    ...RULES.map((rule, i) => `| ${rule.name} | ${rate(healthy[rule.key].rollbacks, RUNS)} | ${i < 2 ? '< 0.5%' : ''} |`),
    '',
    `### Canary with 2x the baseline error rate, 10% traffic (${RUNS} canaries)`,
    '',
    '| rule | detected within 3 intervals (95% CI) | median intervals to rollback | never detected in 10 | target |',
    '| --- | --- | --- | --- | --- |',
    ...RULES.map((rule, i) => `| ${rule.name} | ${rate(doubled[rule.key].within3, RUNS)} | ${med(doubled[rule.key].median)} | ${pct2(doubled[rule.key].never / RUNS)} | ${i < 2 ? '> 99% within 3' : ''} |`),
    '',
    `### Traffic sweep (${SWEEP_RUNS} healthy + ${SWEEP_RUNS} doubled canaries per row, bursts in 10% of intervals, ${SWEEP_LATENCY_SAMPLES} latency samples per track)`,
    '',
    'Each cell: false rollbacks / doubled canary detected within 3 intervals / median intervals to rollback.',
    '',
    '| requests/s | canary requests / interval | sequential, failureLimit 1 | sequential, failureLimit 2 | per-interval (previous), failureLimit 2 | threshold 1%, failureLimit 1 | threshold 1%, failureLimit 2 |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...sweep,
    '',
    `### Error rate alone, by traffic (${Number(process.env.BENCH_ERROR_ONLY_RUNS ?? 2000)} healthy + ${Number(process.env.BENCH_ERROR_ONLY_RUNS ?? 2000)} doubled canaries per row, bursts in 10% of intervals, SLO maxErrorRate 2% + compare to baseline, no latency SLO)`,
    '',
    'Each cell: false rollbacks (95% CI) / doubled canary detected within 3 intervals (95% CI) / median intervals to rollback.',
    '',
    '| requests/s | canary requests / interval | sequential, failureLimit 1 | sequential, failureLimit 2 | per-interval (previous), failureLimit 2 | threshold 1%, failureLimit 2 |',
    '| --- | --- | --- | --- | --- | --- |',
    ...errorOnly,
    '',
    `Simulation and judging took ${simSeconds.toFixed(0)} s. Judge CPU per interval, sequential (both tracks, ${LATENCY_SAMPLES} latency samples each; the machine was shared with other work): median ${quantile(judgeTimes, 0.5).toFixed(2)} ms, p99 ${quantile(judgeTimes, 0.99).toFixed(2)} ms.`,
    '',
    '### Revert commit on main (lib/rollback, real repository)',
    '',
    `A repository with 200 commits of history, the bad promotion, then 20 later unrelated commits; \`createLocalRollback().revert()\` (find the introducing commit, 3-way revert, quarantine, commit, compare-and-swap main, update the checked-out tree). ${rollback.clean.length} trials each.`,
    '',
    '| path | median ms | max ms |',
    '| --- | --- | --- |',
    `| git-revert semantics (clean) | ${quantile(rollback.clean, 0.5).toFixed(0)} | ${Math.max(...rollback.clean).toFixed(0)} |`,
    `| explicit digest write-back (conflict) | ${quantile(rollback.explicit, 0.5).toFixed(0)} | ${Math.max(...rollback.explicit).toFixed(0)} |`,
    '',
  ];
  const text = lines.join('\n');
  writeResultsSection('judge', text);
  process.stdout.write(text);
}

await main();
