/** `builtin` metrics: the local proxy's own request log, read for the window. Raw latencies, exact counts. */
import type { MetricsProvider, MetricsWindow, RequestLog, TrackMetrics } from '../types.js';

/** A proxied request counts as an error when the service (or the proxy, for a dead upstream) answered 5xx, or no answer came (status 0). */
export function isErrorStatus(status: number): boolean {
  return status >= 500 || status === 0;
}

export function createBuiltinMetricsProvider(log: RequestLog): MetricsProvider {
  return {
    name: 'builtin',
    async fetch(window: MetricsWindow): Promise<TrackMetrics> {
      const samples = log.samples({ environment: window.environment, service: window.service }, window.track, window.start, window.end);
      let errors = 0;
      const latenciesMs = new Array<number>(samples.length);
      for (let i = 0; i < samples.length; i++) {
        const s = samples[i]!;
        if (isErrorStatus(s.status)) errors++;
        latenciesMs[i] = s.latencyMs;
      }
      return { requests: samples.length, errors, latenciesMs };
    },
  };
}
