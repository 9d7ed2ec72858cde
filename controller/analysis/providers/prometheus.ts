/**
 * `prometheus` metrics over the HTTP API (instant and range queries). PromQL templates take `{{service}}`,
 * `{{env}}`, `{{track}}`, `{{interval}}` (the window, in seconds) and, for latency, `{{quantile}}`. The
 * defaults read the series the local proxy exports (PROXY_METRICS); the Kubernetes target relabels to them.
 * Missing data (empty vector, NaN, Inf) comes back as `undefined`, so the judge says inconclusive, never pass.
 */
import { settleAll } from '../settle.js';
import { SlipwayError } from '../../../lib/errors.js';
import type { PrometheusSettings } from '../../../schemas/index.js';
import { parseDurationMs } from '../duration.js';
import { PROXY_METRICS, type MetricsProvider, type MetricsWindow, type TrackMetrics } from '../types.js';

const SELECTOR = 'environment="{{env}}",service="{{service}}",track="{{track}}"';

export const DEFAULT_PROMETHEUS_QUERIES = {
  requests: `sum(increase(${PROXY_METRICS.requests}{${SELECTOR}}[{{interval}}]))`,
  errors: `sum(increase(${PROXY_METRICS.requests}{${SELECTOR},code=~"5.."}[{{interval}}]))`,
  latencyQuantile: `1000 * histogram_quantile({{quantile}}, sum by (le) (rate(${PROXY_METRICS.duration}_bucket{${SELECTOR}}[{{interval}}])))`,
} as const;

export interface TemplateVars {
  service: string;
  env: string;
  track: string;
  interval: string;
  quantile?: number;
}

/** Fill a PromQL template. Label values are escaped for a double-quoted PromQL string; unknown placeholders are an error. */
export function renderQuery(template: string, vars: TemplateVars): string {
  return template.replace(/\{\{\s*([a-z]+)\s*\}\}/g, (_, name: string) => {
    switch (name) {
      case 'service':
      case 'env':
      case 'track':
        return escapeLabelValue(vars[name]);
      case 'interval':
        return vars.interval;
      case 'quantile':
        if (vars.quantile === undefined) throw new SlipwayError('BAD_QUERY_TEMPLATE', `{{quantile}} is only available in the latencyQuantile query: ${template}`, 'stalling');
        return String(vars.quantile);
      default:
        throw new SlipwayError('BAD_QUERY_TEMPLATE', `unknown placeholder {{${name}}} in query "${template}" (known: service, env, track, interval, quantile)`, 'stalling', { template });
    }
  });
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export interface PrometheusClientOptions {
  url: string;
  timeoutMs?: number;
  headers?: Record<string, string>;
  /** Attempts for a request that failed on the network or with 5xx (4xx is never retried). */
  attempts?: number;
  /** Base delay between attempts; doubled each time. */
  backoffMs?: number;
  fetchImpl?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

export interface PrometheusSample {
  metric: Record<string, string>;
  /** Unix seconds and value, as Prometheus returns them (the value parsed; NaN stays NaN). */
  value: [number, number];
}

export interface PrometheusSeries {
  metric: Record<string, string>;
  values: [number, number][];
}

export interface PrometheusClient {
  query(promql: string, time: Date): Promise<PrometheusSample[]>;
  queryRange(promql: string, start: Date, end: Date, stepSeconds: number): Promise<PrometheusSeries[]>;
}

interface ApiResponse {
  status: 'success' | 'error';
  data?: { resultType: string; result: unknown };
  errorType?: string;
  error?: string;
}

export function createPrometheusClient(options: PrometheusClientOptions): PrometheusClient {
  const base = options.url.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 10_000;
  const attempts = Math.max(1, options.attempts ?? 3);
  const backoffMs = options.backoffMs ?? 200;
  const doFetch = options.fetchImpl ?? fetch;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  async function call(path: string, params: Record<string, string>): Promise<{ resultType: string; result: unknown }> {
    const body = new URLSearchParams(params).toString();
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let response: Response;
      try {
        response = await doFetch(`${base}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...options.headers },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        lastError = new SlipwayError('PROMETHEUS_UNREACHABLE', `Prometheus at ${base} did not answer: ${describeFetchError(err, timeoutMs)}`, 'waiting', { url: base }, { cause: err });
        if (attempt < attempts) await sleep(backoffMs * 2 ** (attempt - 1));
        continue;
      }
      const text = await response.text();
      if (response.status >= 500) {
        lastError = new SlipwayError('PROMETHEUS_ERROR', `Prometheus at ${base} answered ${response.status}: ${apiError(text) ?? text.slice(0, 200)}`, 'waiting', { url: base, status: response.status });
        if (attempt < attempts) await sleep(backoffMs * 2 ** (attempt - 1));
        continue;
      }
      if (response.status === 401 || response.status === 403) {
        throw new SlipwayError(
          'PROMETHEUS_UNAUTHORIZED',
          `Prometheus at ${base} refused the credentials (${response.status}): set analysis.prometheus.headers (e.g. Authorization) in the environment or service file`,
          'stalling',
          { url: base, status: response.status, path: 'spec.analysis.prometheus.headers' },
        );
      }
      if (response.status >= 400) {
        throw new SlipwayError('PROMETHEUS_BAD_QUERY', `Prometheus at ${base} refused the query (${response.status}): ${apiError(text) ?? text.slice(0, 200)}; query: ${params.query}`, 'stalling', {
          url: base,
          status: response.status,
          query: params.query,
        });
      }
      let parsed: ApiResponse;
      try {
        parsed = JSON.parse(text) as ApiResponse;
      } catch {
        throw new SlipwayError('PROMETHEUS_BAD_RESPONSE', `Prometheus at ${base} answered with something that is not JSON: ${text.slice(0, 120)}`, 'waiting', { url: base });
      }
      if (parsed.status !== 'success' || !parsed.data) {
        throw new SlipwayError('PROMETHEUS_BAD_QUERY', `Prometheus query failed (${parsed.errorType ?? 'error'}): ${parsed.error ?? 'no data'}; query: ${params.query}`, 'stalling', { query: params.query });
      }
      return parsed.data;
    }
    throw lastError;
  }

  return {
    async query(promql, time) {
      const data = await call('/api/v1/query', { query: promql, time: String(time.getTime() / 1000) });
      if (data.resultType === 'scalar') {
        const [t, v] = data.result as [number, string];
        return [{ metric: {}, value: [t, Number(v)] }];
      }
      if (data.resultType !== 'vector') throw new SlipwayError('PROMETHEUS_BAD_RESPONSE', `expected an instant vector, got ${data.resultType}; query: ${promql}`, 'stalling');
      return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((s) => ({
        metric: s.metric,
        value: [s.value[0], Number(s.value[1])],
      }));
    },
    async queryRange(promql, start, end, stepSeconds) {
      const data = await call('/api/v1/query_range', {
        query: promql,
        start: String(start.getTime() / 1000),
        end: String(end.getTime() / 1000),
        step: String(stepSeconds),
      });
      if (data.resultType !== 'matrix') throw new SlipwayError('PROMETHEUS_BAD_RESPONSE', `expected a range vector, got ${data.resultType}; query: ${promql}`, 'stalling');
      return (data.result as { metric: Record<string, string>; values: [number, string][] }[]).map((s) => ({
        metric: s.metric,
        values: s.values.map(([t, v]) => [t, Number(v)] as [number, number]),
      }));
    },
  };
}

function apiError(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as ApiResponse;
    return parsed.error;
  } catch {
    return undefined;
  }
}

function describeFetchError(err: unknown, timeoutMs: number): string {
  // Duck-typed: fetch rejects with a DOMException, which is not always an `Error` of this realm.
  type Named = { name?: unknown; message?: unknown };
  const e = err as (Named & { cause?: Named }) | undefined;
  const isTimeout = (x: Named | undefined) => x?.name === 'TimeoutError' || x?.name === 'AbortError';
  if (isTimeout(e) || isTimeout(e?.cause)) return `timed out after ${timeoutMs} ms`;
  if (typeof e?.cause?.message === 'string') return e.cause.message;
  return typeof e?.message === 'string' ? e.message : String(err);
}

/** One number from an instant query; undefined when the vector is empty or the value is not finite. */
function single(samples: PrometheusSample[], promql: string): number | undefined {
  if (samples.length === 0) return undefined;
  if (samples.length > 1) {
    throw new SlipwayError('PROMETHEUS_BAD_QUERY', `query returned ${samples.length} series, one was expected (aggregate with sum(...)): ${promql}`, 'stalling', { query: promql });
  }
  const v = samples[0]!.value[1];
  return Number.isFinite(v) ? v : undefined;
}

export interface PrometheusMetricsOptions {
  settings: PrometheusSettings;
  /** Quantiles to fetch (from the service's latency SLOs). */
  quantiles?: number[];
  client?: PrometheusClient;
  fetchImpl?: typeof fetch;
  attempts?: number;
  backoffMs?: number;
}

/**
 * Counts for the window come from `increase(...)` at the window's end over its length, rounded to whole
 * requests. An empty errors vector while requests exist means no 5xx happened (the labelled series only
 * appears after the first one); an empty requests vector means no data.
 */
export function createPrometheusMetricsProvider(options: PrometheusMetricsOptions): MetricsProvider & { client: PrometheusClient } {
  const { settings } = options;
  const client =
    options.client ??
    createPrometheusClient({
      url: settings.url,
      timeoutMs: settings.timeout ? parseDurationMs(settings.timeout, 'analysis.prometheus.timeout') : undefined,
      headers: settings.headers,
      fetchImpl: options.fetchImpl,
      attempts: options.attempts,
      backoffMs: options.backoffMs,
    });
  const queries = { ...DEFAULT_PROMETHEUS_QUERIES, ...settings.queries };
  return {
    name: 'prometheus',
    client,
    async fetch(window: MetricsWindow): Promise<TrackMetrics> {
      const seconds = Math.max(1, Math.round((window.end.getTime() - window.start.getTime()) / 1000));
      const vars: TemplateVars = { service: window.service, env: window.environment, track: window.track, interval: `${seconds}s` };
      const requestsQuery = renderQuery(queries.requests, vars);
      const errorsQuery = renderQuery(queries.errors, vars);
      const [requestsRaw, errorsRaw] = await settleAll([client.query(requestsQuery, window.end), client.query(errorsQuery, window.end)]);
      const requests = single(requestsRaw, requestsQuery);
      const errors = single(errorsRaw, errorsQuery);
      const metrics: TrackMetrics = {
        requests: requests === undefined ? NaN : Math.round(requests),
        errors: errorsRaw.length === 0 && requests !== undefined ? 0 : errors === undefined ? NaN : Math.round(errors),
      };
      if (options.quantiles && options.quantiles.length > 0) {
        const latencyQuantilesMs: Record<string, number> = {};
        await settleAll(
          options.quantiles.map(async (q) => {
            const promql = renderQuery(queries.latencyQuantile, { ...vars, quantile: q });
            const v = single(await client.query(promql, window.end), promql);
            if (v !== undefined) latencyQuantilesMs[String(q)] = v;
          }),
        );
        metrics.latencyQuantilesMs = latencyQuantilesMs;
      }
      return metrics;
    },
  };
}
