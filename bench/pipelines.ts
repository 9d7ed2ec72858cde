/**
 * What the controller's pipeline queue adds to a build (run: node --import tsx bench/pipelines.ts [runs=15] [--write]):
 *  1. A cache-hit build of examples/hello called directly (`build()`), against the same build triggered through
 *     the API (`POST /api/v1/pipelines/trigger`, then the job's end awaited in-process): the difference is the
 *     queue, the preflight, the HTTP round trip and the atomic record writes (one fsync'd write per change).
 *  2. Triggers answered per second by a full queue (each parsed, validated and answered 429 before any git call):
 *     the cost a flood of triggers puts on the controller.
 * --write writes bench/results/controller-pipelines.md.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../builder/index.js';
import { ApiServer, Controller, GitEnvironmentSource, freezeCalendar } from '../controller/index.js';
import { FileJobStore, PipelineQueue, createBuilderRunner, type JobRunner } from '../controller/pipelines/index.js';
import { createServiceRepo } from '../test/support/fixtures/service-repo.js';
import { EnvRepo, digestOf } from '../test/support/envrepo.js';
import { MemoryTarget } from '../test/support/memory-target.js';
import { GitCliRevert } from '../test/support/git-revert.js';

const runs = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 15);
const write = process.argv.includes('--write');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;
const f = (n: number) => `${n.toFixed(1)} ms`;

const tmp = await mkdtemp(join(tmpdir(), 'slipway-bench-pipelines-'));
const home = join(tmp, 'home');
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, SLIPWAY_HOME: home };
const service = await createServiceRepo({ dir: join(tmp, 'hello') });
const store = `oci:${join(tmp, 'images')}`;
const envRepo = EnvRepo.create({ services: { web: { digest: digestOf('a') } } });
const target = new MemoryTarget();
const controller = new Controller({
  source: new GitEnvironmentSource({ location: envRepo.dir }),
  targetFor: () => target,
  verifier: { verify: async () => ({ ok: false, code: 'NO_ATTESTATION', message: 'bench' }) as never },
  freeze: freezeCalendar({ activeWindows: () => [] }),
  analysis: { analyze: async (ctx) => ({ outcome: 'pass', summary: 'ok', slos: [], at: ctx.end.toISOString() }) },
  rollback: new GitCliRevert(envRepo.dir),
  stateDir: join(tmp, 'state'),
});

try {
  // Warm the cache: every later build of this commit is a cache hit.
  await build({ repoDir: service.dir, commit: service.commit, store, home, env });

  const direct: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await build({ repoDir: service.dir, commit: service.commit, store, home, env });
    direct.push(performance.now() - t);
  }

  const queue = await PipelineQueue.open({ store: new FileJobStore(join(tmp, 'state', 'pipelines')), runner: createBuilderRunner({ home, env }), limits: { concurrency: 1, keep: 1000 } });
  const api = new ApiServer({ controller, token: 't', pipelines: queue });
  const url = await api.listen();
  const viaApi: number[] = [];
  // The first job loads the builder's and the signer's modules into the controller; not measured.
  for (let i = -1; i < runs; i++) {
    const t = performance.now();
    const res = await fetch(`${url}/api/v1/pipelines/trigger`, {
      method: 'POST',
      headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
      body: JSON.stringify({ repo: service.dir, commit: service.commit, registry: store, sign: false }),
    });
    const { id } = (await res.json()) as { id: string };
    await queue.idle();
    if (i >= 0) viaApi.push(performance.now() - t);
    if (queue.get(id)?.state !== 'succeeded') throw new Error(`job ${id} ended ${queue.get(id)?.state}`);
  }
  await api.close();
  await queue.close();

  // A queue that never has room: every trigger is validated, preflighted and refused.
  let release!: () => void;
  const blocked: JobRunner = { ...createBuilderRunner({ home, env }), run: () => new Promise((r) => (release = () => r({ state: 'failed', error: { code: 'X', message: 'x' } }))) };
  const full = await PipelineQueue.open({ store: new FileJobStore(join(tmp, 'state2')), runner: blocked, limits: { concurrency: 1, maxQueued: 0 } });
  const api2 = new ApiServer({ controller, token: 't', pipelines: full });
  const url2 = await api2.listen();
  await full.trigger({ repo: service.dir });
  const floods = runs * 20;
  const t0 = performance.now();
  for (let i = 0; i < floods; i++) {
    const res = await fetch(`${url2}/api/v1/pipelines/trigger`, { method: 'POST', headers: { authorization: 'Bearer t' }, body: JSON.stringify({ repo: service.dir }) });
    if (res.status !== 429) throw new Error(`expected 429, got ${res.status}`);
    await res.arrayBuffer();
  }
  const perSecond = floods / ((performance.now() - t0) / 1000);
  release();
  await api2.close();
  await full.close();

  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim()}), Node ${process.versions.node}, load average ${(await import('node:os')).loadavg()[0]!.toFixed(1)} at the start of the write-up`;
  const report = [
    '# Controller pipeline jobs',
    '',
    `Command: \`node --import tsx bench/pipelines.ts ${runs} --write\` · machine: ${machine} · ${new Date().toISOString().slice(0, 10)}`,
    '',
    'A cache-hit build of examples/hello (stages skipped, image already in the layout), median and p90 of ' + `${runs} runs:`,
    '',
    '| path | median | p90 |',
    '| --- | --- | --- |',
    `| \`build()\` called directly | ${f(median(direct))} | ${f(p90(direct))} |`,
    `| \`POST /api/v1/pipelines/trigger\` → job succeeded (queue, preflight, HTTP, record writes) | ${f(median(viaApi))} | ${f(p90(viaApi))} |`,
    `| queue + API overhead (difference of medians) | ${f(median(viaApi) - median(direct))} | |`,
    '',
    `Triggers refused with 429 by a full queue (each parsed and validated with ajv, refused before any git call): ${perSecond.toFixed(0)} per second over ${floods} requests, one client at a time.`,
    '',
    'The machine is shared by several sessions (see the load average): compare the two rows of one run, not runs.',
    '',
  ].join('\n');
  process.stdout.write(report);
  if (write) await writeFile(join(process.cwd(), 'bench', 'results', 'controller-pipelines.md'), report);
} finally {
  await controller.stop().catch(() => undefined);
  envRepo.cleanup();
  await rm(tmp, { recursive: true, force: true });
}
