import { describe, expect, it } from '@jest/globals';
import { Histogram, Registry } from 'prom-client';
import { PROXY_DURATION_BUCKETS, ProxyMetrics, ProxyRequestLog, TrackSplitter } from '../../../controller/proxy/index.js';

describe('the track splitter', () => {
  it.each([0, 1, 5, 30, 50, 77, 99, 100])('gives the canary exactly %i of every 100 consecutive picks', (weight) => {
    const splitter = new TrackSplitter();
    splitter.setWeight(weight);
    for (let window = 0; window < 5; window++) {
      let canary = 0;
      for (let i = 0; i < 100; i++) if (splitter.next() === 'canary') canary++;
      expect(canary).toBe(weight);
    }
  });

  it('spreads the canary picks out instead of bunching them', () => {
    const splitter = new TrackSplitter();
    splitter.setWeight(25);
    const picks = Array.from({ length: 8 }, () => splitter.next());
    expect(picks.filter((t) => t === 'canary')).toHaveLength(2);
    expect(picks.slice(0, 4).filter((t) => t === 'canary')).toHaveLength(1);
  });

  it('is deterministic: two splitters with the same weight pick the same sequence', () => {
    const a = new TrackSplitter();
    const b = new TrackSplitter();
    a.setWeight(37);
    b.setWeight(37);
    expect(Array.from({ length: 300 }, () => a.next())).toEqual(Array.from({ length: 300 }, () => b.next()));
  });

  it('refuses a weight outside 0..100 or not whole', () => {
    const splitter = new TrackSplitter();
    expect(() => splitter.setWeight(101)).toThrow(/0 to 100/);
    expect(() => splitter.setWeight(-1)).toThrow(/0 to 100/);
    expect(() => splitter.setWeight(2.5)).toThrow(/integer/);
  });
});

describe('the proxy request log', () => {
  const ref = { environment: 'staging', service: 'web' };

  it('returns the samples of one track within [start, end), oldest first', () => {
    const log = new ProxyRequestLog();
    for (let i = 0; i < 10; i++) log.record(ref, i % 2 ? 'canary' : 'stable', { at: 1000 + i, status: 200 + i, latencyMs: i });
    expect(log.samples(ref, 'canary', new Date(1003), new Date(1008)).map((s) => s.at)).toEqual([1003, 1005, 1007]);
    expect(log.samples(ref, 'stable', new Date(0), new Date(2000))).toHaveLength(5);
    expect(log.samples({ environment: 'production', service: 'web' }, 'stable', new Date(0), new Date(2000))).toEqual([]);
  });

  it('keeps at most maxSamples per track, dropping the oldest', () => {
    const log = new ProxyRequestLog({ maxSamples: 3000 });
    for (let i = 0; i < 5000; i++) log.record(ref, 'stable', { at: i, status: 200, latencyMs: 1 });
    const kept = log.samples(ref, 'stable', new Date(0), new Date(10_000));
    expect(kept).toHaveLength(3000);
    expect(kept[0]!.at).toBe(2000);
    expect(kept.at(-1)!.at).toBe(4999);
  });

  it('drops samples older than maxAgeMs relative to the newest', () => {
    const log = new ProxyRequestLog({ maxAgeMs: 1000 });
    log.record(ref, 'canary', { at: 0, status: 500, latencyMs: 1 });
    log.record(ref, 'canary', { at: 500, status: 200, latencyMs: 1 });
    log.record(ref, 'canary', { at: 1600, status: 200, latencyMs: 1 });
    expect(log.samples(ref, 'canary', new Date(0), new Date(5000)).map((s) => s.at)).toEqual([1600]);
  });

  it('forgets a service that left', () => {
    const log = new ProxyRequestLog();
    log.record(ref, 'stable', { at: 1, status: 200, latencyMs: 1 });
    log.forget(ref);
    expect(log.samples(ref, 'stable', new Date(0), new Date(10))).toEqual([]);
  });

  it('takes samples from a writer bound to a service, which keeps writing after the service was forgotten', () => {
    const log = new ProxyRequestLog();
    const write = log.writer(ref);
    write('canary', 5, 503, 2.5);
    write('stable', 6, 200, 1);
    expect(log.samples(ref, 'canary', new Date(0), new Date(10))).toEqual([{ at: 5, status: 503, latencyMs: 2.5 }]);
    log.forget(ref);
    write('stable', 7, 200, 1);
    expect(log.samples(ref, 'stable', new Date(0), new Date(10)).map((s) => s.at)).toEqual([7]);
    expect(log.samples(ref, 'canary', new Date(0), new Date(10))).toEqual([]);
  });
});

describe('the proxy metrics', () => {
  it('expose the same counter and histogram as observing each request with prom-client directly', async () => {
    const metrics = new ProxyMetrics();
    const recorder = metrics.recorder('staging', 'web');
    const referenceRegistry = new Registry();
    const reference = new Histogram({ name: 'reference', help: 'same observations through prom-client', labelNames: ['track', 'code'], buckets: PROXY_DURATION_BUCKETS, registers: [referenceRegistry] });
    const seconds = [0.0001, 0.0005, 0.0007, 0.0012, 0.004, 0.0999, 1.3, 9.99, 12, 0.002];
    for (const [i, s] of seconds.entries()) {
      const status = i % 3 === 0 ? 500 : 200;
      recorder.observe('canary', status, s);
      reference.observe({ track: 'canary', code: String(status) }, s);
    }
    const lines = (text: string, prefix: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(prefix))
        .map((l) => l.replace(prefix, '').replace('environment="staging",service="web",', ''));
    const first = await metrics.registry.getSingleMetricAsString('slipway_proxy_request_duration_seconds');
    expect(lines(first, 'slipway_proxy_request_duration_seconds')).toEqual(lines(await referenceRegistry.metrics(), 'reference'));
    expect(lines(first, 'slipway_proxy_request_duration_seconds').length).toBeGreaterThan(40);
    expect(await metrics.registry.getSingleMetricAsString('slipway_proxy_requests_total')).toContain('track="canary",code="500"} 4');
    // Later requests add to what was already exposed.
    recorder.observe('canary', 500, 0.003);
    expect(await metrics.registry.getSingleMetricAsString('slipway_proxy_requests_total')).toContain('track="canary",code="500"} 5');
    expect(await metrics.registry.getSingleMetricAsString('slipway_proxy_request_duration_seconds')).toContain('track="canary",code="500"} 5');
    // A forgotten service leaves no series, and comes back when it records again.
    await metrics.forget('staging', 'web');
    expect(await metrics.registry.getSingleMetricAsString('slipway_proxy_requests_total')).not.toContain('service="web"');
    recorder.observe('stable', 200, 0.001);
    expect(await metrics.registry.getSingleMetricAsString('slipway_proxy_requests_total')).toContain('track="stable",code="200"} 1');
  });
});
