import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { PROXY_METRICS } from '../analysis/types.js';
import type { Track } from '../targets/types.js';

/**
 * Seconds. Dense from 1 ms to 5 s (roughly 1.25–1.5x apart) so histogram_quantile's linear interpolation
 * gives a p99 within a few percent anywhere in that range.
 */
export const PROXY_DURATION_BUCKETS = [
  0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0065, 0.008, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04,
  0.05, 0.065, 0.08, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10,
];

export const PROXY_GAUGES = {
  canaryWeight: 'slipway_proxy_canary_weight',
  healthyInstances: 'slipway_proxy_healthy_instances',
} as const;

type Labels = 'environment' | 'service' | 'track' | 'code';

export interface RequestRecorder {
  observe(track: Track, status: number, seconds: number): void;
}

/** The prom-client histogram's per-series record (prom-client 15 keeps one per label set in `hashMap`). */
interface HistogramSeries {
  labels: Record<string, string | number>;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/** Observations of one (environment, service, track, code) not yet folded into the prom-client series. */
class PendingSeries {
  count = 0;
  sum = 0;
  /** In ProxyMetrics' list of series to fold in (a forgotten service's series leave it until used again). */
  listed = true;
  readonly buckets = new Float64Array(PROXY_DURATION_BUCKETS.length);
  constructor(
    readonly labels: { environment: string; service: string; track: Track; code: string },
    readonly counter: Counter.Internal,
  ) {}

  observe(seconds: number): void {
    this.count++;
    this.sum += seconds;
    const bucket = bucketIndex(seconds);
    if (bucket < this.buckets.length) this.buckets[bucket]!++;
  }
}

/** The first bucket whose upper bound holds `seconds` (the length when none does: only +Inf). */
function bucketIndex(seconds: number): number {
  let low = 0;
  let high = PROXY_DURATION_BUCKETS.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (seconds <= PROXY_DURATION_BUCKETS[mid]!) high = mid;
    else low = mid + 1;
  }
  return low;
}

/** The proxy's series, on their own registry (never the global one) so the controller decides where they show. */
export class ProxyMetrics {
  readonly registry: Registry;
  private readonly requests: Counter<Labels>;
  private readonly duration: Histogram<Labels>;
  private readonly weight: Gauge<'environment' | 'service'>;
  private readonly healthy: Gauge<'environment' | 'service' | 'track'>;
  private readonly pending: PendingSeries[] = [];

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    this.requests = new Counter({
      name: PROXY_METRICS.requests,
      help: 'Requests answered by the local proxy, by environment, service, track and HTTP status code.',
      labelNames: ['environment', 'service', 'track', 'code'],
      registers: [registry],
      collect: () => this.flush(),
    });
    this.duration = new Histogram({
      name: PROXY_METRICS.duration,
      help: 'Time from request arrival at the local proxy to the last byte of the response, in seconds.',
      labelNames: ['environment', 'service', 'track', 'code'],
      buckets: PROXY_DURATION_BUCKETS,
      registers: [registry],
      collect: () => this.flush(),
    });
    this.weight = new Gauge({
      name: PROXY_GAUGES.canaryWeight,
      help: 'Share of traffic (0..100) the local proxy sends to the canary track.',
      labelNames: ['environment', 'service'],
      registers: [registry],
    });
    this.healthy = new Gauge({
      name: PROXY_GAUGES.healthyInstances,
      help: 'Instances in rotation behind the local proxy, by track.',
      labelNames: ['environment', 'service', 'track'],
      registers: [registry],
    });
  }

  /**
   * A recorder bound to one service. A request costs a few typed-array increments on the series of its (track,
   * status), found by number; they are folded into the prom-client series whenever these are read (a scrape,
   * `registry.metrics()`, `get()`), so what any reader sees is complete. prom-client's own `observe` validates and
   * hashes the labels on every call, which cost the proxy's fast path more than routing a request.
   */
  recorder(environment: string, service: string): RequestRecorder {
    const series: Record<Track, Map<number, PendingSeries>> = { stable: new Map(), canary: new Map() };
    return {
      observe: (track, status, seconds) => {
        const byStatus = series[track];
        let pending = byStatus.get(status);
        if (!pending) {
          const labels = { environment, service, track, code: String(status) };
          pending = new PendingSeries(labels, this.requests.labels(labels));
          byStatus.set(status, pending);
          this.pending.push(pending);
        } else if (!pending.listed) {
          pending.listed = true;
          this.pending.push(pending);
        }
        pending.observe(seconds);
      },
    };
  }

  /** Folds the observations made since the last read into the prom-client series (counter and histogram together). */
  private flush(): void {
    let histogramSeries: Map<string, HistogramSeries> | undefined;
    const key = (labels: Record<string, string | number>) => `${labels.environment}\u0000${labels.service}\u0000${labels.track}\u0000${labels.code}`;
    const hashMap = () => (this.duration as unknown as { hashMap: Record<string, HistogramSeries> }).hashMap;
    for (const pending of this.pending) {
      if (pending.count === 0) continue;
      pending.counter.inc(pending.count);
      if (histogramSeries === undefined) {
        histogramSeries = new Map();
        for (const entry of Object.values(hashMap())) histogramSeries.set(key(entry.labels), entry);
      }
      let entry = histogramSeries.get(key(pending.labels));
      if (!entry) {
        this.duration.zero(pending.labels);
        entry = Object.values(hashMap()).find((e) => key(e.labels) === key(pending.labels))!;
        histogramSeries.set(key(pending.labels), entry);
      }
      entry.count += pending.count;
      entry.sum += pending.sum;
      for (let i = 0; i < pending.buckets.length; i++) {
        if (pending.buckets[i] === 0) continue;
        entry.bucketValues[PROXY_DURATION_BUCKETS[i]!] = (entry.bucketValues[PROXY_DURATION_BUCKETS[i]!] ?? 0) + pending.buckets[i]!;
        pending.buckets[i] = 0;
      }
      pending.count = 0;
      pending.sum = 0;
    }
  }

  setWeight(environment: string, service: string, canaryWeight: number): void {
    this.weight.labels({ environment, service }).set(canaryWeight);
  }

  setHealthy(environment: string, service: string, track: Track, count: number): void {
    this.healthy.labels({ environment, service, track }).set(count);
  }

  /** Drop every series of a service that left the environment (prom-client removes by exact label set only). */
  async forget(environment: string, service: string): Promise<void> {
    this.flush();
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const { labels } = this.pending[i]!;
      if (labels.environment !== environment || labels.service !== service) continue;
      this.pending[i]!.listed = false;
      this.pending.splice(i, 1);
    }
    for (const metric of [this.requests, this.duration, this.weight, this.healthy] as Counter<string>[]) {
      const { values } = await metric.get();
      const seen = new Set<string>();
      for (const { labels } of values) {
        if (labels.environment !== environment || labels.service !== service) continue;
        const { le: _bucket, ...series } = labels as Record<string, string | number>;
        const id = JSON.stringify(Object.entries(series).sort());
        if (seen.has(id)) continue;
        seen.add(id);
        metric.remove(series);
      }
    }
  }
}

/** Serves a registry at `/metrics` (for a Prometheus to scrape) on 127.0.0.1 unless told otherwise. */
export async function serveMetrics(
  registry: Registry,
  options: { port?: number; host?: string } = {},
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: only GET /metrics is served here\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics failed: ${String(err)}\n`),
    );
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://${host}:${port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
