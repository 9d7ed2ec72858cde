/**
 * Reconcile cost: `node --import tsx bench/reconcile.ts [services...]` (default 100 500 1000).
 *
 * For an environments repo of N services (one environment, one commit of history per change):
 * - no-op poll: main has not moved (one ref lookup, nothing else);
 * - one changed service: the commit is loaded and validated (unchanged files come from the blob cache),
 *   diffed by tree ids, gated, and rolled out (rolling, in-memory target) to Completed;
 * - webhook to first traffic shift: same, with a canary strategy, stopping at the first setWeight.
 * The target is in memory so the numbers are the controller's own cost (instance start time excluded).
 * Results go to bench/results/controller.md.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Reconciler, freezeCalendar, GitEnvironmentSource, StateStore, FileAuditLog } from '../controller/index.js';
import { writeFileAtomic } from '../controller/state/index.js';
import { MemoryTarget } from '../test/support/memory-target.js';
import { EnvRepo, digestOf, serviceYaml } from '../test/support/envrepo.js';
import type { Strategy } from '../schemas/index.js';

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const SIZES = sizes.length ? sizes : [100, 500, 1000];
const NOOP_ROUNDS = 200;
const CHANGE_ROUNDS = 15;
const CANARY: Strategy = { canary: { steps: [{ setWeight: 10 }, { pause: {} }, { setWeight: 100 }] } };

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

const fmt = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(1)} ms`);

interface Row {
  services: number;
  initialMs: number;
  noop: number[];
  change: number[];
  firstShift: number[];
  /** head + load/validate + diff of a commit that changed one service: the git side of a change. */
  gitSide: number[];
  /** One atomic state write (temp file, fsync, rename, directory fsync) on this machine's disk. */
  atomicWrite: number[];
}

async function run(n: number): Promise<Row> {
  const repo = EnvRepo.create({});
  for (let i = 0; i < n; i++) {
    const name = `svc-${String(i).padStart(4, '0')}`;
    mkdirSync(join(repo.dir, 'staging/services'), { recursive: true });
    writeFileSync(join(repo.dir, `staging/services/${name}.yaml`), serviceYaml(name, { digest: digestOf((i % 16).toString(16)), ...(i === 0 ? { strategy: CANARY } : {}) }));
  }
  repo.commit(`${n} services`);
  const stateDir = mkdtempSync(join(tmpdir(), 'slipway-bench-'));
  const target = new MemoryTarget();
  let firstShiftAt: number | undefined;
  const timedTarget = Object.assign(Object.create(target) as MemoryTarget, {
    setWeight: async (ref: { environment: string; service: string }, w: number) => {
      if (firstShiftAt === undefined && w > 0) firstShiftAt = performance.now();
      return target.setWeight(ref, w);
    },
  });
  const reconciler = new Reconciler({
    store: new StateStore(stateDir),
    ports: {
      source: new GitEnvironmentSource({ location: repo.dir }),
      targetFor: () => timedTarget,
      verifier: { verify: async (r) => ({ ok: true, provenance: { digest: r.digest, builderId: 'b', sourceRepo: 'r', sourceRef: 'main', sourceCommit: 'c', keyName: 'ci' } }) },
      freeze: freezeCalendar({ activeWindows: () => [] }),
      analysis: { analyze: async (ctx) => ({ outcome: 'pass', summary: 'ok', slos: [], at: ctx.end.toISOString() }) },
      rollback: { revert: async () => { throw new Error('not in this benchmark'); } },
      audit: new FileAuditLog(join(stateDir, 'audit.jsonl')),
      clock: { now: () => new Date() },
    },
  });

  let t = performance.now();
  await reconciler.sync('startup');
  const initialMs = performance.now() - t;

  const noop: number[] = [];
  for (let i = 0; i < NOOP_ROUNDS; i++) {
    t = performance.now();
    const r = await reconciler.sync('interval');
    noop.push(performance.now() - t);
    if (!r.unchanged) throw new Error('expected an unchanged poll');
  }

  const change: number[] = [];
  for (let i = 0; i < CHANGE_ROUNDS; i++) {
    const name = `svc-${String(1 + (i % (n - 1))).padStart(4, '0')}`;
    writeFileSync(join(repo.dir, `staging/services/${name}.yaml`), serviceYaml(name, { digest: digestOf(`${(i + 3) % 10}e`) }));
    repo.commit(`bump ${name}`);
    t = performance.now();
    const r = await reconciler.sync('webhook');
    change.push(performance.now() - t);
    if (r.changed.length !== 1 || r.changed[0]!.outcome !== 'Completed') throw new Error(`expected one completed change, got ${JSON.stringify(r.changed)}`);
  }

  const firstShift: number[] = [];
  for (let i = 0; i < CHANGE_ROUNDS; i++) {
    writeFileSync(join(repo.dir, 'staging/services/svc-0000.yaml'), serviceYaml('svc-0000', { digest: digestOf(`${i % 10}f`), strategy: CANARY }));
    repo.commit('bump svc-0000');
    firstShiftAt = undefined;
    t = performance.now();
    await reconciler.sync('webhook');
    if (firstShiftAt === undefined) throw new Error('no traffic shift');
    firstShift.push(firstShiftAt - t);
  }

  const gitSide: number[] = [];
  const probe = new GitEnvironmentSource({ location: repo.dir });
  for (let i = 0; i < CHANGE_ROUNDS; i++) {
    const name = `svc-${String(1 + ((i + 7) % (n - 1))).padStart(4, '0')}`;
    writeFileSync(join(repo.dir, `staging/services/${name}.yaml`), serviceYaml(name, { digest: digestOf(`${(i + 5) % 10}d`) }));
    const prev = repo.head();
    repo.commit(`bump ${name}`);
    t = performance.now();
    const head = await probe.head();
    const loaded = await probe.load(head);
    const diff = await probe.diff(prev, head);
    gitSide.push(performance.now() - t);
    if (!loaded.ok || diff.services.length !== 1) throw new Error('expected one valid changed service');
  }

  const atomicWrite: number[] = [];
  for (let i = 0; i < 30; i++) {
    t = performance.now();
    await writeFileAtomic(join(stateDir, 'probe.json'), JSON.stringify({ i, pad: 'x'.repeat(2000) }));
    atomicWrite.push(performance.now() - t);
  }

  repo.cleanup();
  rmSync(stateDir, { recursive: true, force: true });
  return { services: n, initialMs, noop, change, firstShift, gitSide, atomicWrite };
}

const loadAtStart = loadavg()[0]!;
const rows: Row[] = [];
for (const n of SIZES) {
  const row = await run(n);
  rows.push(row);
  console.log(
    `${n} services: initial ${fmt(row.initialMs)}; no-op poll p50 ${fmt(quantile(row.noop, 0.5))} p95 ${fmt(quantile(row.noop, 0.95))}; ` +
      `one changed service p50 ${fmt(quantile(row.change, 0.5))} p95 ${fmt(quantile(row.change, 0.95))}; ` +
      `webhook→first shift p50 ${fmt(quantile(row.firstShift, 0.5))} p95 ${fmt(quantile(row.firstShift, 0.95))}; ` +
      `git side p50 ${fmt(quantile(row.gitSide, 0.5))}; atomic write p50 ${fmt(quantile(row.atomicWrite, 0.5))} p95 ${fmt(quantile(row.atomicWrite, 0.95))}`,
  );
}

const gitVersion = execFileSync('git', ['--version'], { encoding: 'utf8' }).trim();
const lines = [
  '# Controller benchmark: reconcile cost',
  '',
  `Command: \`node --import tsx bench/reconcile.ts ${SIZES.join(' ')}\``,
  `Machine: ${cpus().length} cores (shared with other jobs), Node ${process.version}, ${gitVersion}. Date: ${new Date().toISOString()}.`,
  `1-minute load average at start / end: ${loadAtStart.toFixed(1)} / ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores (other sessions were running their tests: treat p95s as noise-bound).`,
  '',
  'One environment of N services in a real git repo on disk; in-memory target (instance start time excluded);',
  `no-op poll over ${NOOP_ROUNDS} rounds; each change measured ${CHANGE_ROUNDS} times (a new commit each time).`,
  '',
  '| services | first sync (all new) | no-op poll p50 | no-op poll p95 | one changed service p50 | p95 | webhook → first traffic shift p50 | p95 | git side of a change p50 | atomic state write p50 / p95 |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(
    (r) =>
      `| ${r.services} | ${fmt(r.initialMs)} | ${fmt(quantile(r.noop, 0.5))} | ${fmt(quantile(r.noop, 0.95))} | ${fmt(quantile(r.change, 0.5))} | ${fmt(quantile(r.change, 0.95))} | ${fmt(quantile(r.firstShift, 0.5))} | ${fmt(quantile(r.firstShift, 0.95))} | ${fmt(quantile(r.gitSide, 0.5))} | ${fmt(quantile(r.atomicWrite, 0.5))} / ${fmt(quantile(r.atomicWrite, 0.95))} |`,
  ),
  '',
  'Targets (issue 6): no-op poll under 20 ms; webhook to first traffic shift p95 under 500 ms for 1,000 services.',
  '"One changed service" = head lookup + load/validate of the commit (unchanged files served from the blob-id cache) +',
  'tree-id diff + gates + rollout to Completed, with state and audit fsynced. "Git side" = head + load/validate + diff',
  'alone; "atomic state write" = one temp-file + fsync + rename + directory fsync, the unit every transition pays',
  '(a change to Completed writes the record about 5 times and appends the audit log about 3 times).',
  '',
];
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(join(import.meta.dirname, 'results', 'controller.md'), lines.join('\n'));
console.log('wrote bench/results/controller.md');
