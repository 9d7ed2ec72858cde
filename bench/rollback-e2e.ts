/**
 * Time from the breach verdict to (a) all traffic on stable and (b) the revert commit on main, with the real
 * controller on the local target: real service processes (an OCI image of a small Node server) behind the real
 * weighted proxy, a real environments repo, the real judge reading the proxy's request log, the real revert
 * (lib/rollback). Each run lands a new bad version (every request answers 500) as a canary at 20%; the analysis
 * (2 s intervals, failureLimit 2) breaches; the controller moves traffic back and reverts the commit on main.
 *
 * Measured per run, on the wall clock (epoch ms, the same clock in both processes):
 *  - breach verdict: when the judge returned the fail verdict that made the breach (a hook around the analysis
 *    provider; cross-checked with the AnalysisVerdict audit entry);
 *  - traffic on stable: when the local target's setWeight(0) returned (a hook around the Target port), and, from
 *    the proxy's own request log, the arrival of the last request it routed to the canary;
 *  - revert on main: when an outside process watching .git/refs/heads/main (every 2 ms) saw main move to the
 *    revert commit (checked against the RevertCommitted audit entry).
 * The load and the ref watcher run in another process (bench/rollback-watch.mjs). Provenance verification is not
 * part of this path and the images are unsigned, so the verifier accepts every digest.
 * Run: node --import tsx bench/rollback-e2e.ts   (BENCH_ROLLBACK_RUNS=10; writes its section of bench/results/analysis.md)
 */
import { spawn } from 'node:child_process';
import fs, { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import { createAnalysisProvider, type AnalysisProvider } from '../controller/analysis/index.js';
import { Controller, GitEnvironmentSource, freezeCalendar } from '../controller/index.js';
import { createLocalTarget } from '../controller/targets/local/index.js';
import type { ServiceRef, Target } from '../controller/targets/types.js';
import { openImageStore } from '../lib/oci/index.js';
import { createLocalRollback } from '../lib/rollback/index.js';
import { EnvRepo } from '../test/support/envrepo.js';
import { freePort } from '../test/support/registry.js';
import { pushServiceImage, type ServiceImage } from '../test/controller/targets/local/service-image.js';
import { writeResultsSection } from './analysis-results.js';

const RUNS = Number(process.env.BENCH_ROLLBACK_RUNS ?? 10);
const ENV = 'staging';
const SERVICE = 'web';
const ref: ServiceRef = { environment: ENV, service: SERVICE };
const now = () => performance.timeOrigin + performance.now();

async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Run {
  verdictToWeightZero: number;
  verdictToCanaryStopped: number;
  verdictToRevertStarted: number;
  verdictToLastCanaryRequest: number;
  verdictToRevertOnMain: number;
  auditVerdictLag: number;
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'slipway-bench-rollback-'));
  const store = openImageStore(`oci:${join(root, 'images')}`);
  const v1 = await pushServiceImage(store, 'v1');
  const bad: ServiceImage[] = [];
  for (let i = 0; i < RUNS; i++) bad.push(await pushServiceImage(store, `v2-bad-${i}`));
  const proxyPort = await freePort();
  const strategy = { canary: { steps: [{ setWeight: 20 }, { analysis: { interval: '2s', count: 5 } }, { setWeight: 100 }] } };
  const serviceFile = (digest: string, env?: Record<string, string>) =>
    stringify({
      apiVersion: 'slipway.dev/v1',
      kind: 'Service',
      metadata: { name: SERVICE },
      spec: { image: { repository: store.repository, digest }, replicas: 1, port: 8080, proxyPort, ...(env ? { env } : {}), strategy },
    });
  const repo = EnvRepo.create({ services: {} });
  repo.write(`${ENV}/environment.yaml`, stringify({ apiVersion: 'slipway.dev/v1', kind: 'Environment', metadata: { name: ENV }, spec: { target: { type: 'local' }, analysis: { minSamples: 20, failureLimit: 2 } } }));
  repo.write(`${ENV}/services/${SERVICE}.yaml`, serviceFile(v1.digest));
  repo.commit('web v1');

  const target = createLocalTarget({ home: join(root, 'home'), openStore: (repository) => openImageStore(repository) });
  const weightZeroAt: number[] = [];
  const canaryStoppedAt: number[] = [];
  const hooked = new Proxy(target as unknown as Target, {
    get(t, prop, receiver) {
      if (prop === 'setWeight') {
        return async (r: ServiceRef, weight: number) => {
          await t.setWeight(r, weight);
          if (weight === 0) weightZeroAt.push(now());
        };
      }
      if (prop === 'removeTrack') {
        return async (r: ServiceRef, track: 'stable' | 'canary') => {
          await t.removeTrack(r, track);
          if (track === 'canary') canaryStoppedAt.push(now());
        };
      }
      const value = Reflect.get(t, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(t) : value;
    },
  });
  const judge = createAnalysisProvider({ requestLog: target.requestLog });
  const failVerdictsAt: number[] = [];
  const analysis: AnalysisProvider = {
    async analyze(ctx) {
      const verdict = await judge.analyze(ctx);
      if (verdict.outcome === 'fail') failVerdictsAt.push(now());
      return verdict;
    },
  };
  const stateDir = join(root, 'state');
  const rollback = createLocalRollback({ fs, dir: repo.dir });
  const revertStartedAt: number[] = [];
  const controller = new Controller({
    source: new GitEnvironmentSource({ location: repo.dir }),
    targetFor: () => hooked,
    verifier: { verify: async (r) => ({ ok: true, provenance: { digest: r.digest, builderId: 'bench', sourceRepo: 'bench', sourceRef: 'bench', sourceCommit: 'bench', keyName: 'ci' } }) },
    freeze: freezeCalendar({ activeWindows: () => [] }),
    analysis,
    rollback: {
      async revert(request) {
        revertStartedAt.push(now());
        return rollback.revert(request);
      },
    },
    stateDir,
    log: (l) => process.env.BENCH_VERBOSE && process.stderr.write(`controller: ${l}\n`),
  });

  const runs: Run[] = [];
  let watcher: ReturnType<typeof spawn> | undefined;
  try {
    await controller.start();
    await until('v1 to run', () => {
      const s = controller.service(ENV, SERVICE);
      return s?.phase === 'Completed' && s.runningDigest === v1.digest;
    });
    watcher = spawn(process.execPath, [join(import.meta.dirname, 'rollback-watch.mjs'), `http://127.0.0.1:${proxyPort}`, repo.dir, '4', '2'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const refs: { at: number; sha: string }[] = [];
    let ready = false;
    createInterface({ input: watcher.stdout! }).on('line', (line) => {
      if (line === 'ready') ready = true;
      const m = /^ref (\S+) (\S+)$/.exec(line);
      if (m) refs.push({ at: Number(m[1]), sha: m[2]! });
    });
    await until('the watcher to start', () => ready);

    for (let i = 0; i < RUNS; i++) {
      const runStart = now();
      repo.write(`${ENV}/services/${SERVICE}.yaml`, serviceFile(bad[i]!.digest, { FAIL_STATUS: '500' }));
      const badCommit = repo.commit(`web: bad version ${i}`);
      await controller.trigger('api');
      await until(`run ${i}: the canary to take traffic`, () => {
        const s = controller.service(ENV, SERVICE);
        return s !== undefined && s.rolloutDigest === bad[i]!.digest && s.weights.canary > 0;
      });
      const history = await until(`run ${i}: the revert commit in the audit trail`, async () => {
        const entries = await controller.history(ENV, SERVICE, 30);
        return entries.some((e) => e.action === 'RevertCommitted' && e.digest === bad[i]!.digest) ? entries : undefined;
      });
      const reverted = history.find((e) => e.action === 'RevertCommitted' && e.digest === bad[i]!.digest)!;
      const onMain = await until(`run ${i}: the watcher to see the revert commit on main`, () => refs.find((r) => r.sha === reverted.commit));
      const verdictAt = failVerdictsAt.filter((t) => t > runStart).at(-1)!;
      const weightZero = weightZeroAt.find((t) => t > verdictAt)!;
      const canarySamples = target.requestLog.samples(ref, 'canary', new Date(runStart - 1000), new Date(Date.now() + 1000));
      const lastCanary = Math.max(...canarySamples.map((s) => s.at));
      const auditVerdict = history.filter((e) => e.action === 'AnalysisVerdict' && e.digest === bad[i]!.digest && (e.data as { outcome?: string } | undefined)?.outcome === 'fail').at(-1);
      runs.push({
        verdictToWeightZero: weightZero - verdictAt,
        verdictToCanaryStopped: (canaryStoppedAt.find((t) => t > verdictAt) ?? NaN) - verdictAt,
        verdictToRevertStarted: (revertStartedAt.find((t) => t > verdictAt) ?? NaN) - verdictAt,
        verdictToLastCanaryRequest: lastCanary - verdictAt,
        verdictToRevertOnMain: onMain.at - verdictAt,
        auditVerdictLag: auditVerdict ? Date.parse(auditVerdict.at) - verdictAt : NaN,
      });
      if (badCommit === reverted.commit) throw new Error('the revert is the bad commit');
      process.stderr.write(`run ${i + 1}/${RUNS}: ${JSON.stringify(runs.at(-1))}\n`);
      await until(`run ${i}: back on v1, main says so too`, async () => {
        await controller.trigger('api');
        const s = controller.service(ENV, SERVICE);
        return s?.phase === 'Completed' && s.runningDigest === v1.digest && s.desiredDigest === v1.digest;
      });
    }
  } finally {
    watcher?.stdin?.end();
    if (watcher && watcher.exitCode === null) {
      await Promise.race([new Promise((r) => watcher!.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
      if (watcher.exitCode === null) watcher.kill('SIGKILL');
    }
    await controller.stop();
    await target.close();
    repo.cleanup();
    rmSync(root, { recursive: true, force: true });
  }

  const q = (xs: number[], p: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  };
  const row = (name: string, xs: number[], target: string) => `| ${name} | ${q(xs, 0.5).toFixed(0)} | ${q(xs, 0.95).toFixed(0)} | ${Math.max(...xs).toFixed(0)} | ${target} |`;
  const lines = [
    '## Breach verdict → traffic on stable → revert commit on main (real controller, local target)',
    '',
    `- Command: \`node --import tsx bench/rollback-e2e.ts\` (BENCH_ROLLBACK_RUNS=${RUNS})`,
    `- Machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}), Node ${process.version}, shared with other work; date ${new Date().toISOString()}`,
    '- Setup: the real controller (sync, gates, rollout core, write-ahead state on disk, audit log) on the local target: one stable and one canary process of a small Node HTTP server image behind the weighted proxy; a real environments repository; the real judge on the proxy\'s request log; the real revert (lib/rollback: introducing commit, 3-way revert, quarantine, compare-and-swap main). Another process sends steady traffic through the proxy (4 connections) and watches `.git/refs/heads/main` every 2 ms.',
    '- Each run lands a new bad version (every request answers 500) as a canary at 20%; analysis every 2 s, failureLimit 2; breach → `setWeight 0`, canary stopped, revert commit; then the controller applies the revert (fast path back to v1) before the next run.',
    '- Breach verdict = the moment the judge returned the fail verdict that made the breach (a hook around the analysis provider).',
    '',
    `| from the breach verdict to … (${runs.length} runs) | p50 ms | p95 ms | max ms | target |`,
    '| --- | --- | --- | --- | --- |',
    row('all traffic on stable (the local target\'s setWeight(0) returned)', runs.map((r) => r.verdictToWeightZero), '< 1000 ms'),
    row('the last request the proxy routed to the canary (proxy request log)', runs.map((r) => r.verdictToLastCanaryRequest), ''),
    row('(path) the canary instances stopped (removeTrack returned)', runs.map((r) => r.verdictToCanaryStopped), ''),
    row('(path) the revert started (rollback port called)', runs.map((r) => r.verdictToRevertStarted), ''),
    row('the revert commit on main (ref watcher in another process)', runs.map((r) => r.verdictToRevertOnMain), '< 2000 ms'),
    row('(check) the AnalysisVerdict audit entry\'s timestamp', runs.map((r) => r.auditVerdictLag), ''),
    '',
  ];
  const text = lines.join('\n');
  writeResultsSection('rollback', text);
  process.stdout.write(`${text}\n`);
}

await main();
