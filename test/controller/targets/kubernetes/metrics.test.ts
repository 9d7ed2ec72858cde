/**
 * Track metrics end to end: the scrape job in deploy/prometheus/scrape-config.yaml, run by a real Prometheus
 * over the pods of a real kube-apiserver, finds the pods of the Deployments the target
 * applied, relabels `slipway.dev/track` to `track`, and the analysis provider's default queries read each track.
 * With no kubelet, the test creates the Pods from each Deployment's template and writes their status
 * (podIP 127.0.0.1, Running) as a kubelet would; each "pod" is an HTTP server here serving /metrics.
 * Debian's prometheus is built without kubernetes_sd, so support/kube/podsd.ts serves the apiserver's pods over
 * http_sd with the meta labels kubernetes_sd would set; the job's relabelling is used unchanged.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { parse } from 'yaml';
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../../../support/kube/apiserver.js';
import { ensureNamespace } from '../../../support/kube/cluster.js';
import { startPodDiscovery } from '../../../support/kube/podsd.js';
import { startPrometheus, type RunningPrometheus } from '../../../support/kube/prometheus.js';
import { createKubeClient, createKubernetesTarget, type KubeClient, type KubeObject } from '../../../../controller/targets/kubernetes/index.js';
import { createPrometheusMetricsProvider } from '../../../../controller/analysis/index.js';
import type { Track } from '../../../../controller/targets/types.js';

const STABLE = `sha256:${'5a'.repeat(32)}`;
const CANARY = `sha256:${'ca'.repeat(32)}`;
const NS = 'shop';

/** An app's /metrics: every scrape adds 100 requests, `errorsPerScrape` of them 5xx. */
function appServer(errorsPerScrape: number): Promise<{ server: Server; port: number }> {
  let scrapes = 0;
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') return res.writeHead(404).end();
    scrapes++;
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(
      [
        '# TYPE http_requests_total counter',
        `http_requests_total{status="200"} ${scrapes * (100 - errorsPerScrape)}`,
        `http_requests_total{status="500"} ${scrapes * errorsPerScrape}`,
        '',
      ].join('\n'),
    );
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port })),
  );
}

describeWithKube('track metrics through Prometheus Kubernetes discovery (real kube-apiserver, real Prometheus)', () => {
  let kube: KubeApiserver;
  let client: KubeClient;
  let prometheus: RunningPrometheus | undefined;
  let discovery: { url: string; close(): Promise<void> } | undefined;
  const apps: Server[] = [];

  async function createPodFor(track: Track, port: number): Promise<void> {
    const name = track === 'stable' ? 'web' : 'web-canary';
    const d = (await client.get({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: NS })) as KubeObject & {
      spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: { name: string; image: string; ports: { name: string }[] }[] } } };
    };
    const template = d.spec.template;
    const container = template.spec.containers[0];
    // What the ReplicaSet controller creates from the template; only the port differs (loopback needs one per pod).
    const pod = await client.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `${name}-pod-0`, namespace: NS, labels: template.metadata.labels },
      spec: { containers: [{ name: container.name, image: container.image, ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }] }] },
    } as never);
    await client.replaceStatus({ ...(pod as object), status: { phase: 'Running', podIP: '127.0.0.1', podIPs: [{ ip: '127.0.0.1' }], conditions: [{ type: 'Ready', status: 'True' }] } } as never, 'pods');
  }

  beforeAll(async () => {
    kube = await startKubeApiserver();
    client = createKubeClient(kube.kubeConfig());
    await ensureNamespace(client, NS);
    const target = createKubernetesTarget({ client, namespace: NS });
    const ref = { environment: 'staging', service: 'web' };
    const spec = { repository: 'r.example/web', replicas: 1, port: 8080, healthPath: '/healthz', env: {} };
    await target.ensureTrack(ref, 'stable', { ...spec, digest: STABLE });
    await target.ensureTrack(ref, 'canary', { ...spec, digest: CANARY });

    const stable = await appServer(1);
    const canary = await appServer(10);
    apps.push(stable.server, canary.server);
    await createPodFor('stable', stable.port);
    await createPodFor('canary', canary.port);

    const [job] = parse(readFileSync(join(process.cwd(), 'deploy/prometheus/scrape-config.yaml'), 'utf8')) as Record<string, unknown>[];
    job.scrape_interval = '1s';
    // Debian's prometheus has no Kubernetes SD: the same pod targets and meta labels come over http_sd.
    discovery = await startPodDiscovery(client, NS);
    delete job.kubernetes_sd_configs;
    job.http_sd_configs = [{ url: discovery.url, refresh_interval: '1s' }];
    prometheus = await startPrometheus({ global: { scrape_interval: '1s', evaluation_interval: '1s' }, scrape_configs: [job] });
  }, KUBE_START_TIMEOUT_MS);
  afterAll(async () => {
    await prometheus?.stop();
    await discovery?.close();
    for (const s of apps) s.close();
    await kube?.stop();
  });

  it('reads requests and errors per track with the analysis provider default queries', async () => {
    const provider = createPrometheusMetricsProvider({ settings: { url: prometheus!.url } });
    const window = (track: Track) => ({ environment: 'staging', service: 'web', track, start: new Date(Date.now() - 5000), end: new Date() });
    // Wait for discovery and a few scrapes of both pods (readiness of the fixture, not the assertion).
    const deadline = Date.now() + 40000;
    let stable = await provider.fetch(window('stable'));
    let canary = await provider.fetch(window('canary'));
    while ((!(stable.requests >= 200) || !(canary.requests >= 200)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      stable = await provider.fetch(window('stable'));
      canary = await provider.fetch(window('canary'));
    }
    expect(stable.requests).toBeGreaterThanOrEqual(200);
    expect(canary.requests).toBeGreaterThanOrEqual(200);
    // 1 in 100 vs 10 in 100: the track label separates the two pods' series.
    expect(stable.errors / stable.requests).toBeCloseTo(0.01, 2);
    expect(canary.errors / canary.requests).toBeCloseTo(0.1, 2);
  });

  it('labels the series with track, service and environment from the pod labels', async () => {
    const res = await fetch(`${prometheus!.url}/api/v1/series?match[]=slipway_proxy_requests_total`);
    const body = (await res.json()) as { data: Record<string, string>[] };
    const tracks = new Set(body.data.map((s) => `${s.environment}/${s.service}/${s.track}/${s.code}`));
    expect([...tracks].sort()).toEqual(['staging/web/canary/200', 'staging/web/canary/500', 'staging/web/stable/200', 'staging/web/stable/500']);
  });
});
