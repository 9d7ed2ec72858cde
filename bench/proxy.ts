/**
 * Local target proxy benchmark.
 *  1. Overhead: the same instance (a real process from a real OCI image) loaded directly and through the proxy,
 *     alternating rounds in one run; the load generator is a separate process so it does not share the proxy's
 *     event loop. Reports requests/s and p50/p99 for both.
 *  2. Rollback: under load at canary weight 50, time from setWeight(0) to the last canary answer, and how many
 *     requests sent after setWeight(0) still reached the canary (must be 0).
 * Run: node --import tsx bench/proxy.ts   (writes bench/results/localtarget.md)
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { Agent, createServer, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openImageStore } from '../lib/oci/index.js';
import { createLocalTarget } from '../controller/targets/local/index.js';
import { pushServiceImage } from '../test/controller/targets/local/service-image.js';
import type { LoadResult } from './loadgen.js';

const execFileAsync = promisify(execFile);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const ROLLBACK_TRIALS = Number(process.env.BENCH_ROLLBACK_TRIALS ?? 20);

type Round = LoadResult & { cpuMicrosPerRequest: number };

/**
 * Load from a separate process. CPU time this process (where the proxies run) spent during the round, per
 * request, is the load-independent measure of proxy cost: wall-clock numbers move with the machine's load.
 */
async function loadFromChild(url: string): Promise<Round> {
  const before = process.cpuUsage();
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', 'bench/loadgen.ts', url, String(CONCURRENCY), String(SECONDS * 1000)]);
  const used = process.cpuUsage(before);
  const result = JSON.parse(stdout) as LoadResult;
  return { ...result, cpuMicrosPerRequest: (used.user + used.system) / Math.max(1, result.requests) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const loadAtStart = loadavg();
const home = await mkdtemp(join(tmpdir(), 'slipway-bench-proxy-'));
const store = openImageStore(`oci:${join(home, 'store')}`);
const v1 = await pushServiceImage(store, 'v1');
const v2 = await pushServiceImage(store, 'v2');
const target = createLocalTarget({ home: join(home, 'slipway'), openStore: (r) => openImageStore(r), health: { startupProbeMs: 30 } });
const ref = { environment: 'bench', service: 'web' };
const spec = (digest: string) => ({ repository: store.repository, digest, replicas: 1, port: 8080, healthPath: '/healthz', env: {} });

try {
  const t0 = performance.now();
  await target.ensureTrack(ref, 'stable', spec(v1.digest));
  const firstStartMs = performance.now() - t0;
  const t1 = performance.now();
  await target.ensureTrack(ref, 'canary', spec(v2.digest));
  const canaryStartMs = performance.now() - t1;
  const proxyUrl = `${(await target.observe(ref)).endpoint!}/`;
  const [instance] = target.instances(ref, 'stable');
  const directUrl = `http://127.0.0.1:${instance!.port}/`;

  // The floor for any Node reverse proxy: pipe through with no routing, headers, metrics or log.
  const bareAgent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const bare = createServer((req, res) => {
    const upstream = request({ host: '127.0.0.1', port: instance!.port, method: req.method, path: req.url, headers: req.headers, agent: bareAgent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', () => resolve()));
  const bareAddress = bare.address();
  const bareUrl = `http://127.0.0.1:${typeof bareAddress === 'object' && bareAddress ? bareAddress.port : 0}/`;

  // 1. Overhead, all traffic on stable so direct and proxied hit the same process.
  await target.setWeight(ref, 0);
  await loadFromChild(proxyUrl); // warm-up (JIT, connections)
  await loadFromChild(bareUrl);
  const direct: Round[] = [];
  const proxied: Round[] = [];
  const bareRuns: Round[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    direct.push(await loadFromChild(directUrl));
    proxied.push(await loadFromChild(proxyUrl));
    bareRuns.push(await loadFromChild(bareUrl));
  }
  bare.closeAllConnections();
  bare.close();
  bareAgent.destroy();

  // 2. Rollback: weight 50 under load, then setWeight(0).
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const rollback: { callMs: number; lastCanaryMs: number; canaryAfter: number; inFlightCanary: number }[] = [];
  for (let trial = 0; trial < ROLLBACK_TRIALS; trial++) {
    await target.setWeight(ref, 50);
    let rolledBackAt = Infinity;
    let stop = false;
    let lastCanaryDone = -Infinity;
    let canaryAfter = 0;
    let inFlightCanary = 0;
    const one = () =>
      new Promise<void>((resolve) => {
        const sentAt = performance.now();
        const req = request({ host: '127.0.0.1', port: new URL(proxyUrl).port, path: '/', agent }, (res) => {
          res.resume();
          res.on('end', () => {
            const doneAt = performance.now();
            if (res.headers['x-slipway-track'] === 'canary') {
              if (sentAt >= rolledBackAt) canaryAfter++;
              if (doneAt >= rolledBackAt) {
                inFlightCanary++;
                lastCanaryDone = Math.max(lastCanaryDone, doneAt);
              }
            }
            resolve();
          });
        });
        req.on('error', () => resolve());
        req.end();
      });
    const workers = Array.from({ length: CONCURRENCY }, async () => {
      while (!stop) await one();
    });
    await new Promise((r) => setTimeout(r, 300));
    const before = performance.now();
    await target.setWeight(ref, 0);
    rolledBackAt = performance.now();
    const callMs = rolledBackAt - before;
    await new Promise((r) => setTimeout(r, 200));
    stop = true;
    await Promise.all(workers);
    rollback.push({ callMs, lastCanaryMs: Number.isFinite(lastCanaryDone) ? lastCanaryDone - before : 0, canaryAfter, inFlightCanary });
  }
  agent.destroy();

  const d = { rps: median(direct.map((r) => r.requestsPerSecond)), p50: median(direct.map((r) => r.p50Ms)), p99: median(direct.map((r) => r.p99Ms)) };
  const p = { rps: median(proxied.map((r) => r.requestsPerSecond)), p50: median(proxied.map((r) => r.p50Ms)), p99: median(proxied.map((r) => r.p99Ms)) };
  const b = { rps: median(bareRuns.map((r) => r.requestsPerSecond)), p50: median(bareRuns.map((r) => r.p50Ms)), p99: median(bareRuns.map((r) => r.p99Ms)) };
  const lastCanary = rollback.map((r) => r.lastCanaryMs).sort((a, b) => a - b);
  const row = (name: string, rs: Round[], cpu: boolean) =>
    rs.map(
      (r, i) =>
        `| ${name} ${i + 1} | ${r.requests} | ${r.errors} | ${r.requestsPerSecond.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p90Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${cpu ? r.cpuMicrosPerRequest.toFixed(0) : '-'} |`,
    );
  const cpuOf = (rs: Round[]) => median(rs.map((r) => r.cpuMicrosPerRequest));
  const report = [
    '# Local target: proxy overhead and rollback speed',
    '',
    `- Command: \`node --import tsx bench/proxy.ts\` (BENCH_ROUNDS=${ROUNDS}, BENCH_SECONDS=${SECONDS}, BENCH_CONCURRENCY=${CONCURRENCY}, BENCH_ROLLBACK_TRIALS=${ROLLBACK_TRIALS})`,
    `- Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, shared with other work; date ${new Date().toISOString()}`,
    '- Instance: the test service image (Node http server answering a small JSON body), one process, run by the local target from its unpacked OCI image.',
    `- Load: a separate process, ${CONCURRENCY} keep-alive connections on loopback, closed loop, ${SECONDS} s per round; direct, Slipway proxy and bare pipe rounds alternate after a warm-up round of each proxy.`,
    `- Load average at the start: ${loadAtStart.map((l) => l.toFixed(1)).join(' / ')} (1/5/15 min) on ${cpus().length} cores.`,
    '',
    '## Proxy overhead (same instance, same run)',
    '',
    '| | requests/s (median of rounds) | p50 ms | p99 ms |',
    '| --- | --- | --- | --- |',
    `| direct to the instance | ${d.rps.toFixed(0)} | ${d.p50.toFixed(2)} | ${d.p99.toFixed(2)} |`,
    `| through the proxy | ${p.rps.toFixed(0)} | ${p.p50.toFixed(2)} | ${p.p99.toFixed(2)} |`,
    `| bare Node pipe proxy (no routing, metrics or log: the floor for a Node proxy) | ${b.rps.toFixed(0)} | ${b.p50.toFixed(2)} | ${b.p99.toFixed(2)} |`,
    `| proxy / direct | ${((p.rps / d.rps) * 100).toFixed(0)}% of direct throughput (target ≥ 70%) | +${(p.p50 - d.p50).toFixed(2)} ms | +${(p.p99 - d.p99).toFixed(2)} ms (target < 2 ms) |`,
    `| proxy / bare pipe | ${((p.rps / b.rps) * 100).toFixed(0)}% of the bare pipe's throughput | +${(p.p50 - b.p50).toFixed(2)} ms | +${(p.p99 - b.p99).toFixed(2)} ms |`,
    '',
    'How to read this: the direct rows need two processes (load generator, instance); the proxied rows need a third',
    '(the proxy, which parses and writes every request and response once more), all on the same 2 cores, which other',
    'work was also using (load average above). So the throughput ratio measures CPU sharing as much as proxy cost. The',
    'bare-pipe row and the CPU-per-request figure isolate what the Slipway proxy adds over the floor for any Node proxy:',
    'routing, header hygiene, the per-track histogram and counter, and the request log.',
    '',
    `Proxy CPU per request (this process's user+system CPU time during the round / requests; moves far less with the machine's load than wall-clock figures, though contention still inflates it): Slipway proxy ${cpuOf(proxied).toFixed(0)} µs, bare pipe ${cpuOf(bareRuns).toFixed(0)} µs. At that cost one core proxies about ${(1e6 / cpuOf(proxied)).toFixed(0)} requests/s.`,
    '',
    '| round | requests | 5xx/errors | requests/s | p50 ms | p90 ms | p99 ms | proxy CPU µs/request |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...row('direct', direct, false),
    ...row('proxy', proxied, true),
    ...row('bare pipe', bareRuns, true),
    '',
    '## Rollback: setWeight(0) to no canary traffic',
    '',
    `Under load at canary weight 50 (${CONCURRENCY} connections in the benchmark process), \`target.setWeight(ref, 0)\` is called; ${ROLLBACK_TRIALS} trials.`,
    '',
    `- setWeight(0) call: median ${median(rollback.map((r) => r.callMs)).toFixed(3)} ms, max ${Math.max(...rollback.map((r) => r.callMs)).toFixed(3)} ms.`,
    `- Requests sent after setWeight(0) returned that reached the canary: ${rollback.reduce((s, r) => s + r.canaryAfter, 0)} (over all trials).`,
    `- Time from setWeight(0) to the last canary answer (requests already in flight finishing): median ${median(lastCanary).toFixed(2)} ms, max ${lastCanary.at(-1)!.toFixed(2)} ms; canary answers still in flight at the switch: median ${median(rollback.map((r) => r.inFlightCanary))}.`,
    '',
    '## Instance start (for reference, not proxy cost)',
    '',
    `- First ensureTrack (pull from an OCI layout, verify, unpack, start, health-checked): ${firstStartMs.toFixed(0)} ms; canary track (another image, so another pull and unpack): ${canaryStartMs.toFixed(0)} ms.`,
    '',
  ].join('\n');
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/localtarget.md', report);
  process.stdout.write(report);
} finally {
  await target.close();
  await rm(home, { recursive: true, force: true });
}
