/**
 * Blue-green uses the same judge: on the preview before the switch (preview traffic on the canary track against
 * the active version), and after the switch (the new version, now serving everything, against the old version's
 * traffic just before the switch). Requests go through the local proxy's real request log.
 */
import { baselineWindowOf, createAnalysisProvider, type AnalysisContext } from '../../../controller/analysis/index.js';
import { ProxyRequestLog } from '../../../controller/proxy/index.js';
import type { Track } from '../../../controller/targets/types.js';
import { rng } from '../../support/traffic.js';

const ref = { environment: 'production', service: 'checkout' };
const T0 = Date.parse('2026-05-01T10:00:00Z');
const MINUTE = 60_000;
const slos = { maxErrorRate: 0.02, latency: [{ quantile: 0.99, maxMs: 800 }] };

/** `count` requests spread evenly over [from, to): every `1/errorRate`-th one a 503, log-normal latencies. */
function traffic(log: ProxyRequestLog, track: Track, from: number, to: number, count: number, errorRate: number, medianMs = 30, seed = 1): void {
  const r = rng(seed);
  const every = errorRate > 0 ? Math.round(1 / errorRate) : Infinity;
  for (let i = 0; i < count; i++) {
    const z = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    log.record(ref, track, { at: from + ((to - from) * i) / count, status: (i + 1) % every === 0 ? 503 : 200, latencyMs: medianMs * Math.exp(0.5 * z) });
  }
}

function context(extra: Partial<AnalysisContext>): AnalysisContext {
  return { ...ref, slos, settings: { provider: 'builtin', minSamples: 100 }, start: new Date(T0), end: new Date(T0 + MINUTE), ...extra };
}

describe('blue-green analysis', () => {
  describe('on the preview, before the switch', () => {
    it('fails a preview that answers 5xx to a tenth of the preview traffic', async () => {
      const log = new ProxyRequestLog();
      traffic(log, 'stable', T0, T0 + MINUTE, 6000, 0.005);
      traffic(log, 'canary', T0, T0 + MINUTE, 600, 0.1, 30, 2);
      const v = await createAnalysisProvider({ requestLog: log }).analyze(context({ label: 'preview' }));
      expect(v.outcome).toBe('fail');
      expect(v.slos.find((s) => s.slo === 'errorRate')!.numbers).toMatchObject({ canaryRequests: 600, canaryErrors: 60, baselineRequests: 6000, baselineErrors: 30 });
    });

    it('passes a healthy preview', async () => {
      const log = new ProxyRequestLog();
      traffic(log, 'stable', T0, T0 + MINUTE, 6000, 0.005);
      traffic(log, 'canary', T0, T0 + MINUTE, 600, 0.005, 30, 2);
      const v = await createAnalysisProvider({ requestLog: log }).analyze(context({ label: 'preview' }));
      expect(v.outcome).toBe('pass');
    });

    it('holds (inconclusive) when nothing exercised the preview', async () => {
      const log = new ProxyRequestLog();
      traffic(log, 'stable', T0, T0 + MINUTE, 6000, 0.005);
      const v = await createAnalysisProvider({ requestLog: log }).analyze(context({ label: 'preview' }));
      expect(v.outcome).toBe('inconclusive');
      expect(v.summary).toMatch(/too few requests to judge: canary had 0/);
    });
  });

  describe('after the switch', () => {
    // Before T0 + 5 min the old version (stable) served everything; after it the new one (canary track at 100%).
    const switchedAt = T0 + 5 * MINUTE;
    function switched(newErrorRate: number, newMedianMs = 30): ProxyRequestLog {
      const log = new ProxyRequestLog();
      traffic(log, 'stable', T0, switchedAt, 30_000, 0.005);
      traffic(log, 'canary', switchedAt, switchedAt + 3 * MINUTE, 18_000, newErrorRate, newMedianMs, 3);
      return log;
    }
    // The second post-switch interval: [switch + 1 min, switch + 2 min].
    const second = { start: new Date(switchedAt + MINUTE), end: new Date(switchedAt + 2 * MINUTE) };

    it('compares the new version with the old one just before the switch', () => {
      expect(baselineWindowOf({ ...second, label: 'postSwitch', switchedAt: new Date(switchedAt) })).toEqual({
        start: new Date(switchedAt - MINUTE),
        end: new Date(switchedAt),
      });
      expect(baselineWindowOf({ ...second, label: 'canary' })).toEqual(second);
    });

    it('fails a new version whose error rate went up after the switch (the controller then switches back and reverts)', async () => {
      const v = await createAnalysisProvider({ requestLog: switched(0.02) }).analyze(context({ ...second, label: 'postSwitch', switchedAt: new Date(switchedAt) }));
      expect(v.outcome).toBe('fail');
      expect(v.slos.find((s) => s.slo === 'errorRate')!.numbers).toMatchObject({ canaryRequests: 6000, canaryErrors: 120, baselineRequests: 6000, baselineErrors: 30 });
    });

    it('fails a new version that got much slower', async () => {
      const v = await createAnalysisProvider({ requestLog: switched(0.005, 60) }).analyze(context({ ...second, label: 'postSwitch', switchedAt: new Date(switchedAt) }));
      expect(v.slos.find((s) => s.slo === 'latency p99')!.outcome).toBe('fail');
    });

    it('passes a healthy new version', async () => {
      const v = await createAnalysisProvider({ requestLog: switched(0.005) }).analyze(context({ ...second, label: 'postSwitch', switchedAt: new Date(switchedAt) }));
      expect(v.outcome).toBe('pass');
    });

    it('would only ever be inconclusive if judged like a canary step (the old version serves nothing now)', async () => {
      const v = await createAnalysisProvider({ requestLog: switched(0.02) }).analyze(context({ ...second }));
      expect(v.outcome).toBe('inconclusive');
      expect(v.summary).toMatch(/baseline had 0/);
    });
  });
});
