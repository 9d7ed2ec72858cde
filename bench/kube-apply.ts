/**
 * Kubernetes target against a real kube-apiserver + etcd (built by test/support/setup.d/50-kube-apiserver.sh):
 *  1. reconcile N services (stable track each) into one namespace from scratch: API calls and wall time;
 *  2. one changed service afterwards: API calls (must not grow with N) and wall time;
 *  3. apply latency of one canary step (setWeight) with the replica-ratio split, repeated.
 *
 *   node --import tsx bench/kube-apply.ts [--services 500] [--steps 40] [--concurrency 4]
 * Writes bench/results/kubernetes.md.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { startKubeApiserver, kubeAvailability } from '../test/support/kube/apiserver.js';
import { createKubeClient, createKubernetesTarget, type ApiRequest } from '../controller/targets/kubernetes/index.js';
import type { TrackSpec } from '../controller/targets/types.js';

const { values } = parseArgs({
  options: { services: { type: 'string', default: '500' }, steps: { type: 'string', default: '40' }, concurrency: { type: 'string', default: '4' } },
});
const N = Number(values.services);
const STEPS = Number(values.steps);
const CONCURRENCY = Number(values.concurrency);

const availability = kubeAvailability();
if (!availability.available) {
  console.error(`cannot run: ${availability.reason}`);
  process.exit(2);
}

const digest = (i: number) => `sha256:${i.toString(16).padStart(64, '0')}`;
const spec = (i: number, d = digest(i)): TrackSpec => ({ repository: `registry.example/svc-${i}`, digest: d, replicas: 4, port: 8080, healthPath: '/healthz', env: { SERVICE: `svc-${i}` } });

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

const kube = await startKubeApiserver();
try {
  let calls: ApiRequest[] = [];
  const client = createKubeClient(kube.kubeConfig(), { onRequest: (r) => calls.push(r) });
  await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } });
  const target = createKubernetesTarget({ client, namespace: 'bench' });
  const ref = (i: number) => ({ environment: 'bench', service: `svc-${i}` });

  calls = [];
  let t0 = performance.now();
  await pool([...Array(N).keys()], CONCURRENCY, (i) => target.ensureTrack(ref(i), 'stable', spec(i)));
  const scratchMs = performance.now() - t0;
  const scratchCalls = calls.length;
  const byMethod = (list: ApiRequest[]) =>
    Object.entries(list.reduce<Record<string, number>>((m, c) => ((m[c.method] = (m[c.method] ?? 0) + 1), m), {}))
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  const scratchBreakdown = byMethod(calls);

  // One service changes (a new digest); nothing else is touched.
  calls = [];
  t0 = performance.now();
  await target.ensureTrack(ref(7), 'stable', spec(7, digest(100_000)));
  const oneMs = performance.now() - t0;
  const oneCalls = calls.length;
  const oneBreakdown = byMethod(calls);

  // Canary step latency: one service with a canary, weights stepped 10 → 90 → 10 …
  await target.ensureTrack(ref(3), 'canary', spec(3, digest(200_000)));
  const latencies: number[] = [];
  calls = [];
  for (let s = 0; s < STEPS; s++) {
    const weight = [10, 25, 50, 75, 90][s % 5];
    const t = performance.now();
    await target.setWeight(ref(3), weight);
    latencies.push(performance.now() - t);
  }
  const stepCalls = calls.length / STEPS;
  latencies.sort((a, b) => a - b);

  const date = new Date().toISOString();
  const report = `# Kubernetes target benchmark

Command: \`node --import tsx bench/kube-apply.ts --services ${N} --steps ${STEPS} --concurrency ${CONCURRENCY}\`
Machine: ${cpus().length} cores (shared with other jobs), Node ${process.version}; kube-apiserver v1.20.2 (built from Debian's
source) + etcd 3.4 (Debian) on loopback, TLS, token auth. Date: ${date}.
Every call is one HTTP request counted at the client (discovery included), server-side apply with field manager \`slipway\`.

| case | API calls | wall time |
| --- | ---: | ---: |
| reconcile ${N} services into one namespace from scratch (${CONCURRENCY} in flight) | ${scratchCalls} (${(scratchCalls / N).toFixed(1)} per service; ${scratchBreakdown}) | ${(scratchMs / 1000).toFixed(1)} s (${(scratchMs / N).toFixed(1)} ms per service) |
| one changed service afterwards | ${oneCalls} (${oneBreakdown}) | ${oneMs.toFixed(0)} ms |
| one canary step (setWeight, replica ratio), ${STEPS} steps | ${stepCalls.toFixed(0)} per step | p50 ${quantile(latencies, 0.5).toFixed(1)} ms, p90 ${quantile(latencies, 0.9).toFixed(1)} ms, max ${latencies[latencies.length - 1].toFixed(1)} ms |

The one-change case makes the same number of calls whatever the number of services in the namespace (3 GETs of
the service's own Deployments and Service, then applies of its own objects): O(1), not O(services).
\`test/controller/targets/kubernetes/calls.test.ts\` checks that count does not grow with the namespace.
`;
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/kubernetes.md', report);
  console.log(report);
} finally {
  await kube.stop();
}
