import type { RequestLog, RequestSample } from '../analysis/types.js';
import type { Track } from '../targets/types.js';

export interface RequestLogLimits {
  /** Samples older than this (relative to the newest) are dropped. Default 10 minutes. */
  maxAgeMs: number;
  /** At most this many samples per track; the oldest go first. Default 200,000. */
  maxSamples: number;
}

export const DEFAULT_REQUEST_LOG_LIMITS: RequestLogLimits = { maxAgeMs: 10 * 60_000, maxSamples: 200_000 };

/** A bounded ring of samples in typed arrays: constant memory per track, no allocation per request. */
class SampleRing {
  private at: Float64Array;
  private status: Uint16Array;
  private latency: Float32Array;
  private start = 0;
  private length = 0;

  constructor(private readonly limits: RequestLogLimits) {
    const initial = Math.min(1024, limits.maxSamples);
    this.at = new Float64Array(initial);
    this.status = new Uint16Array(initial);
    this.latency = new Float32Array(initial);
  }

  get size(): number {
    return this.length;
  }

  push(at: number, status: number, latencyMs: number): void {
    if (this.length === this.at.length && this.at.length < this.limits.maxSamples) this.grow();
    const capacity = this.at.length;
    let slot: number;
    if (this.length < capacity) {
      slot = (this.start + this.length) % capacity;
      this.length++;
    } else {
      slot = this.start;
      this.start = (this.start + 1) % capacity;
    }
    this.at[slot] = at;
    this.status[slot] = status;
    this.latency[slot] = latencyMs;
    this.expire(at - this.limits.maxAgeMs);
  }

  /** Samples with start <= at < end, oldest first. */
  read(start: number, end: number): RequestSample[] {
    const out: RequestSample[] = [];
    const capacity = this.at.length;
    for (let i = 0; i < this.length; i++) {
      const slot = (this.start + i) % capacity;
      const at = this.at[slot]!;
      if (at >= start && at < end) out.push({ at, status: this.status[slot]!, latencyMs: this.latency[slot]! });
    }
    return out;
  }

  private expire(cutoff: number): void {
    const capacity = this.at.length;
    while (this.length > 0 && this.at[this.start]! < cutoff) {
      this.start = (this.start + 1) % capacity;
      this.length--;
    }
  }

  private grow(): void {
    const capacity = Math.min(this.at.length * 2, this.limits.maxSamples);
    const at = new Float64Array(capacity);
    const status = new Uint16Array(capacity);
    const latency = new Float32Array(capacity);
    for (let i = 0; i < this.length; i++) {
      const slot = (this.start + i) % this.at.length;
      at[i] = this.at[slot]!;
      status[i] = this.status[slot]!;
      latency[i] = this.latency[slot]!;
    }
    this.at = at;
    this.status = status;
    this.latency = latency;
    this.start = 0;
  }
}

/** The in-process record of every proxied request, per (environment, service, track). */
export class ProxyRequestLog implements RequestLog {
  private readonly rings = new Map<string, SampleRing>();
  readonly limits: RequestLogLimits;
  /** Bumped by forget(), so writers that hold a ring look it up again. */
  private generation = 0;

  constructor(limits: Partial<RequestLogLimits> = {}) {
    this.limits = { ...DEFAULT_REQUEST_LOG_LIMITS, ...limits };
  }

  record(ref: { environment: string; service: string }, track: Track, sample: RequestSample): void {
    this.ring(ref, track).push(sample.at, sample.status, sample.latencyMs);
  }

  /**
   * A writer bound to one service: it keeps its two rings instead of building a key and looking them up for each
   * request (the proxy records every request it answers).
   */
  writer(ref: { environment: string; service: string }): (track: Track, at: number, status: number, latencyMs: number) => void {
    let generation = -1;
    let stable: SampleRing | undefined;
    let canary: SampleRing | undefined;
    return (track, at, status, latencyMs) => {
      if (generation !== this.generation) {
        generation = this.generation;
        stable = undefined;
        canary = undefined;
      }
      const ring = track === 'stable' ? (stable ??= this.ring(ref, 'stable')) : (canary ??= this.ring(ref, 'canary'));
      ring.push(at, status, latencyMs);
    };
  }

  private ring(ref: { environment: string; service: string }, track: Track): SampleRing {
    const key = ringKey(ref, track);
    let ring = this.rings.get(key);
    if (!ring) {
      ring = new SampleRing(this.limits);
      this.rings.set(key, ring);
    }
    return ring;
  }

  samples(ref: { environment: string; service: string }, track: Track, start: Date, end: Date): RequestSample[] {
    return this.rings.get(ringKey(ref, track))?.read(start.getTime(), end.getTime()) ?? [];
  }

  /** Forget a service (it left the environment). */
  forget(ref: { environment: string; service: string }): void {
    this.generation++;
    this.rings.delete(ringKey(ref, 'stable'));
    this.rings.delete(ringKey(ref, 'canary'));
  }
}

function ringKey(ref: { environment: string; service: string }, track: Track): string {
  return `${ref.environment}\u0000${ref.service}\u0000${track}`;
}
