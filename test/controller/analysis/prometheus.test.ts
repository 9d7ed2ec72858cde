/**
 * The prometheus metrics provider against a real Prometheus (Debian package) scraping the local proxy's own
 * exporter (controller/proxy: ProxyMetrics served by serveMetrics) on loopback.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Registry } from 'prom-client';
import {
  createAnalysisProvider,
  createPrometheusClient,
  createPrometheusMetricsProvider,
  PROXY_METRICS,
  type AnalysisContext,
} from '../../../controller/analysis/index.js';
import { ProxyMetrics, serveMetrics } from '../../../controller/proxy/index.js';
import type { AnalysisSettings, Slos } from '../../../schemas/index.js';
import { startPrometheus, type TestPrometheus } from '../../support/prometheus.js';

interface TrackTraffic {
  requests: number;
  errors: number;
  latencyMs: number;
}

const TRAFFIC: Record<string, { stable: TrackTraffic; canary: TrackTraffic }> = {
  // 10x the baseline error rate and 10x slower.
  checkout: { stable: { requests: 9000, errors: 45, latencyMs: 20 }, canary: { requests: 1000, errors: 100, latencyMs: 200 } },
  // Healthy: same error rate, same latency.
  cart: { stable: { requests: 9000, errors: 45, latencyMs: 20 }, canary: { requests: 1000, errors: 5, latencyMs: 20 } },
};

let metricsEndpoint: { url: string; close(): Promise<void> };
let prometheus: TestPrometheus;
let startedAt: Date;
/** Timestamp of the scrape that holds the final counter values (queries are evaluated exactly there). */
let sampledAt: Date;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function instant(query: string): Promise<{ value: [number, string] }[]> {
  const res = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(query)}`, { headers: { authorization: prometheus.authorization! } });
  const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
  return body.data.result;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  const registry = new Registry();
  const proxy = new ProxyMetrics(registry);
  // A differently named series for the custom-template case.
  const appRequests = new Counter({ name: 'app_requests_total', help: 'app requests', labelNames: ['app', 'stage', 'variant', 'status'], registers: [registry] });
  metricsEndpoint = await serveMetrics(registry);
  startedAt = new Date(Date.now() - 2000);
  prometheus = await startPrometheus({ targets: [new URL(metricsEndpoint.url).host], user: { name: 'slipway', password: 'analysis-secret' } });

  // One success and one error per track first, scraped before the rest: increase() over a window that starts
  // before that first sample then extrapolates it back to zero, so the window's count is the exact total.
  const recorders = Object.fromEntries(Object.keys(TRAFFIC).map((service) => [service, proxy.recorder('staging', service)]));
  const send = (service: string, track: 'stable' | 'canary', ok: number, errors: number, latencyMs: number) => {
    for (let i = 0; i < ok; i++) recorders[service]!.observe(track, 200, latencyMs / 1000);
    for (let i = 0; i < errors; i++) recorders[service]!.observe(track, 503, latencyMs / 1000);
    appRequests.inc({ app: service, stage: 'staging', variant: track, status: 'ok' }, ok);
    appRequests.inc({ app: service, stage: 'staging', variant: track, status: 'failed' }, errors);
  };
  for (const [service, tracks] of Object.entries(TRAFFIC)) for (const track of ['stable', 'canary'] as const) send(service, track, 1, 1, tracks[track].latencyMs);
  const seriesCount = Object.keys(TRAFFIC).length * 2 * 2;
  await until('the first samples', async () => ((await instant(`count(${PROXY_METRICS.requests})`))[0]?.value[1] === String(seriesCount) ? true : undefined));

  let expectedTotal = 0;
  for (const [service, tracks] of Object.entries(TRAFFIC)) {
    for (const track of ['stable', 'canary'] as const) {
      const t = tracks[track];
      send(service, track, t.requests - t.errors - 1, t.errors - 1, t.latencyMs);
      expectedTotal += t.requests;
    }
  }
  await until('the traffic samples', async () => ((await instant(`sum(${PROXY_METRICS.requests})`))[0]?.value[1] === String(expectedTotal) ? true : undefined));
  const ts = await instant(`max(timestamp(${PROXY_METRICS.requests}))`);
  sampledAt = new Date(Math.round(Number(ts[0]!.value[1]) * 1000));
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  await metricsEndpoint?.close();
});

function settings(extra: Partial<NonNullable<AnalysisSettings['prometheus']>> = {}): AnalysisSettings {
  return { provider: 'prometheus', prometheus: { url: prometheus.url, headers: { Authorization: prometheus.authorization! }, ...extra } };
}

function context(service: string, slos: Slos, analysis: AnalysisSettings = settings()): AnalysisContext {
  return { environment: 'staging', service, slos, settings: analysis, start: startedAt, end: sampledAt };
}

const deps = { attempts: 1, backoffMs: 1 };

describe('the prometheus metrics provider on a real Prometheus', () => {
  it('scrapes the proxy exporter', async () => {
    expect((await instant('up{job="slipway"}'))[0]?.value[1]).toBe('1');
  });

  describe('with the default queries over the proxy series', () => {
    it('reads the exact request and error counts of each track for the window', async () => {
      const provider = createPrometheusMetricsProvider({ settings: settings().prometheus!, quantiles: [0.99], ...deps });
      const window = { environment: 'staging', service: 'checkout', start: startedAt, end: sampledAt };
      const canary = await provider.fetch({ ...window, track: 'canary' });
      const stable = await provider.fetch({ ...window, track: 'stable' });
      expect([canary.requests, canary.errors]).toEqual([1000, 100]);
      expect([stable.requests, stable.errors]).toEqual([9000, 45]);
      // histogram_quantile interpolates inside the bucket that holds the samples.
      expect(canary.latencyQuantilesMs!['0.99']).toBeGreaterThan(100);
      expect(canary.latencyQuantilesMs!['0.99']).toBeLessThanOrEqual(250);
      expect(stable.latencyQuantilesMs!['0.99']).toBeGreaterThan(10);
      expect(stable.latencyQuantilesMs!['0.99']).toBeLessThanOrEqual(25);
    });

    it('fails a canary with ten times the error rate, with the numbers behind the verdict', async () => {
      const v = await createAnalysisProvider(deps).analyze(context('checkout', { maxErrorRate: 0.02 }));
      expect(v.outcome).toBe('fail');
      const errorRate = v.slos.find((s) => s.slo === 'errorRate')!;
      expect(errorRate.outcome).toBe('fail');
      expect(errorRate.numbers).toMatchObject({ canaryRequests: 1000, canaryErrors: 100, canaryRate: 0.1, baselineRequests: 9000, baselineErrors: 45, baselineRate: 0.005 });
      expect(errorRate.numbers.pValue as number).toBeLessThan(1e-6);
      expect(v.summary).toMatch(/canary error rate 10\.00%/);
    });

    it('fails a canary whose p99 is over the absolute latency limit', async () => {
      const v = await createAnalysisProvider(deps).analyze(context('checkout', { compareToBaseline: false, latency: [{ quantile: 0.99, maxMs: 150 }] }));
      const latency = v.slos.find((s) => s.slo === 'latency p99')!;
      expect(latency.outcome).toBe('fail');
      expect(latency.summary).toMatch(/over 150 ms/);
    });

    it('passes a healthy canary', async () => {
      const v = await createAnalysisProvider(deps).analyze(context('cart', { maxErrorRate: 0.02, latency: [{ quantile: 0.99, maxMs: 150 }] }));
      expect(v.slos.map((s) => [s.slo, s.outcome])).toEqual([
        ['errorRate', 'pass'],
        ['latency p99', 'pass'],
      ]);
      expect(v.outcome).toBe('pass');
    });
  });

  describe('with custom PromQL templates', () => {
    const queries = {
      requests: 'sum(increase(app_requests_total{app="{{service}}",stage="{{env}}",variant="{{track}}"}[{{interval}}]))',
      errors: 'sum(increase(app_requests_total{app="{{service}}",stage="{{env}}",variant="{{track}}",status="failed"}[{{interval}}]))',
    };

    it('fills {{service}}, {{env}}, {{track}} and {{interval}} and reads the same counts', async () => {
      const seen: string[] = [];
      const client = createPrometheusClient({ url: prometheus.url, headers: { authorization: prometheus.authorization! }, attempts: 1 });
      const recording = { query: (q: string, t: Date) => (seen.push(q), client.query(q, t)), queryRange: client.queryRange.bind(client) };
      const provider = createPrometheusMetricsProvider({ settings: settings({ queries }).prometheus!, client: recording });
      const m = await provider.fetch({ environment: 'staging', service: 'checkout', track: 'canary', start: startedAt, end: sampledAt });
      expect([m.requests, m.errors]).toEqual([1000, 100]);
      const seconds = Math.round((sampledAt.getTime() - startedAt.getTime()) / 1000);
      expect(seen).toContain(`sum(increase(app_requests_total{app="checkout",stage="staging",variant="canary"}[${seconds}s]))`);
    });

    it('judges from the custom series like from the default ones', async () => {
      const v = await createAnalysisProvider(deps).analyze(context('checkout', { maxErrorRate: 0.02 }, settings({ queries })));
      expect(v.outcome).toBe('fail');
    });
  });

  describe('range queries', () => {
    it('return each series over the window at the given step', async () => {
      const client = createPrometheusClient({ url: prometheus.url, headers: { authorization: prometheus.authorization! } });
      const series = await client.queryRange(`sum by (track) (${PROXY_METRICS.requests}{service="checkout"})`, new Date(sampledAt.getTime() - 5000), sampledAt, 1);
      const byTrack = Object.fromEntries(series.map((s) => [s.metric.track, s.values]));
      expect(Object.keys(byTrack).sort()).toEqual(['canary', 'stable']);
      expect(byTrack.canary!.at(-1)).toEqual([sampledAt.getTime() / 1000, 1000]);
      expect(byTrack.stable!.at(-1)![1]).toBe(9000);
      expect(byTrack.canary!.length).toBeGreaterThan(1);
    });
  });

  describe('when data is missing or Prometheus cannot answer, the verdict is inconclusive, never pass', () => {
    it('an empty result (a service with no series)', async () => {
      const v = await createAnalysisProvider(deps).analyze(context('ghost', { maxErrorRate: 0.02 }));
      expect(v.outcome).toBe('inconclusive');
      expect(v.summary).toMatch(/canary metrics are missing/);
    });

    it('a NaN from a query (0/0)', async () => {
      const nan = '0 * sum(increase(slipway_proxy_requests_total{service="{{service}}",track="{{track}}"}[{{interval}}])) / 0 + {{quantile}}';
      const v = await createAnalysisProvider(deps).analyze(
        context('cart', { maxErrorRate: 0.02, latency: [{ quantile: 0.99, maxMs: 150 }] }, settings({ queries: { latencyQuantile: nan } })),
      );
      expect(v.slos.map((s) => [s.slo, s.outcome])).toEqual([
        ['errorRate', 'pass'],
        ['latency p99', 'inconclusive'],
      ]);
      expect(v.outcome).toBe('inconclusive');
    });

    it('a query Prometheus rejects, which is not retried', async () => {
      const proxy = await startFaultProxy(prometheus.port, 0);
      try {
        const v = await createAnalysisProvider({ attempts: 3, backoffMs: 1 }).analyze(
          context('checkout', { maxErrorRate: 0.02 }, settings({ url: proxy.url, queries: { requests: 'sum(rate(broken[{{interval}}]' } })),
        );
        expect(v.outcome).toBe('inconclusive');
        expect(v.summary).toMatch(/refused the query \(400\).*parse error/);
        // One rejected requests query per track, none retried.
        expect(proxy.requests.filter((r) => r.status === 400)).toHaveLength(2);
      } finally {
        await proxy.stop();
      }
    });

    it('missing credentials: Prometheus answers 401 and the summary says which setting to fix', async () => {
      const v = await createAnalysisProvider(deps).analyze(context('checkout', { maxErrorRate: 0.02 }, { provider: 'prometheus', prometheus: { url: prometheus.url } }));
      expect(v.outcome).toBe('inconclusive');
      expect(v.summary).toMatch(/refused the credentials \(401\).*analysis\.prometheus\.headers/);
    });

    it('Prometheus down (nothing listening)', async () => {
      const closed = createServer();
      const port = await listen(closed);
      await new Promise<void>((r) => closed.close(() => r()));
      const v = await createAnalysisProvider({ attempts: 2, backoffMs: 1 }).analyze(context('checkout', { maxErrorRate: 0.02 }, settings({ url: `http://127.0.0.1:${port}` })));
      expect(v.outcome).toBe('inconclusive');
      expect(v.summary).toMatch(/did not answer/);
    });

    it('a Prometheus that never answers within the timeout, after every attempt', async () => {
      const hung = createServer(() => {
        /* never answers */
      });
      const seen: string[] = [];
      hung.on('request', (req) => seen.push(req.url ?? ''));
      const port = await listen(hung);
      try {
        const client = createPrometheusClient({ url: `http://127.0.0.1:${port}`, timeoutMs: 1000, attempts: 2, backoffMs: 1 });
        await expect(client.query('up', new Date())).rejects.toMatchObject({ code: 'PROMETHEUS_UNREACHABLE', message: expect.stringContaining('timed out after 1000 ms') });
        expect(seen).toEqual(['/api/v1/query', '/api/v1/query']);

        const v = await createAnalysisProvider({ attempts: 1, backoffMs: 1 }).analyze(
          context('checkout', { compareToBaseline: false, maxErrorRate: 0.02 }, settings({ url: `http://127.0.0.1:${port}`, timeout: '300ms' })),
        );
        expect(v.outcome).toBe('inconclusive');
        expect(v.summary).toMatch(/timed out after 300 ms/);
      } finally {
        hung.closeAllConnections();
        await new Promise<void>((r) => hung.close(() => r()));
      }
    });
  });

  describe('retries', () => {
    it('a 503 is retried and the next answer is used', async () => {
      const proxy = await startFaultProxy(prometheus.port, 2);
      try {
        const provider = createPrometheusMetricsProvider({ settings: settings({ url: proxy.url }).prometheus!, attempts: 3, backoffMs: 1 });
        const m = await provider.fetch({ environment: 'staging', service: 'checkout', track: 'canary', start: startedAt, end: sampledAt });
        expect([m.requests, m.errors]).toEqual([1000, 100]);
        expect(proxy.requests.map((r) => r.status).filter((s) => s === 503)).toHaveLength(2);
      } finally {
        await proxy.stop();
      }
    });

    it('gives up after the attempts and the interval is inconclusive', async () => {
      const proxy = await startFaultProxy(prometheus.port, 100);
      try {
        const v = await createAnalysisProvider({ attempts: 2, backoffMs: 1 }).analyze(context('checkout', { maxErrorRate: 0.02 }, settings({ url: proxy.url })));
        expect(v.outcome).toBe('inconclusive');
        expect(v.summary).toMatch(/answered 503/);
      } finally {
        await proxy.stop();
      }
    });
  });
});

/** A loopback proxy in front of Prometheus that answers 503 to the first `failures` requests. */
async function startFaultProxy(upstreamPort: number, failures: number): Promise<{ url: string; requests: { path: string; status: number }[]; stop(): Promise<void> }> {
  const requests: { path: string; status: number }[] = [];
  let left = failures;
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (left > 0) {
      left--;
      req.resume();
      requests.push({ path, status: 503 });
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'error', errorType: 'unavailable', error: 'overloaded' }));
      return;
    }
    const upstream = httpRequest({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers }, (up) => {
      requests.push({ path, status: up.statusCode ?? 0 });
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    req.pipe(upstream);
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
