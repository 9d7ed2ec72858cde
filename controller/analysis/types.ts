/** Ports between the rollout core and the judge: metrics in, verdicts out. */
import type { Slos, AnalysisSettings } from '../../schemas/index.js';
import type { Track } from '../targets/types.js';

export interface MetricsWindow {
  environment: string;
  service: string;
  track: Track;
  start: Date;
  end: Date;
}

/** What one track did in one window. Missing data is `undefined`, never 0. */
export interface TrackMetrics {
  requests: number;
  errors: number;
  /** Raw per-request latencies when the provider has them (builtin). */
  latenciesMs?: number[];
  /** Latency quantiles (e.g. { '0.99': 120 }) when only aggregates exist (prometheus). */
  latencyQuantilesMs?: Record<string, number>;
}

export interface MetricsProvider {
  readonly name: string;
  fetch(window: MetricsWindow): Promise<TrackMetrics>;
}

export type Outcome = 'pass' | 'fail' | 'inconclusive';

export interface SloVerdict {
  slo: string;
  outcome: Outcome;
  summary: string;
  numbers: Record<string, number | string | null>;
}

export interface Verdict {
  outcome: Outcome;
  summary: string;
  slos: SloVerdict[];
  at: string;
}

export interface AnalysisContext {
  environment: string;
  service: string;
  slos: Slos;
  settings: AnalysisSettings;
  start: Date;
  end: Date;
  /** Which rollout step asks (default canary). */
  label?: AnalysisLabel;
  /**
   * Blue-green after the switch: when traffic moved to the new version. The old version serves nothing after
   * it, so the baseline is its traffic in the window of the same length just before the switch.
   */
  switchedAt?: Date;
  /** Read the baseline here instead of [start, end] (wins over switchedAt). */
  baselineWindow?: { start: Date; end: Date };
}

/** A canary step; a blue-green preview (new version on the canary track, preview traffic) before the switch; the check after it. */
export type AnalysisLabel = 'canary' | 'preview' | 'postSwitch';

/** What a canary `analysis` step (or a blue-green preview check) asks each interval. */
export interface AnalysisProvider {
  analyze(ctx: AnalysisContext): Promise<Verdict>;
}

/** One proxied request, as the local target's proxy records it. */
export interface RequestSample {
  at: number;
  status: number;
  latencyMs: number;
}

/** Read side of the local proxy's per-track request record (the `builtin` metrics provider reads it). */
export interface RequestLog {
  samples(ref: { environment: string; service: string }, track: Track, start: Date, end: Date): RequestSample[];
}

/**
 * Prometheus series the local proxy exposes at /metrics (and the Kubernetes target relabels to), so the
 * prometheus provider's default queries work on both targets. Labels: environment, service, track, code.
 */
export const PROXY_METRICS = {
  requests: 'slipway_proxy_requests_total',
  duration: 'slipway_proxy_request_duration_seconds',
} as const;
