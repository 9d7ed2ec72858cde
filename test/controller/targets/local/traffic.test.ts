import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { serveMetrics } from '../../../../controller/proxy/index.js';
import type { ServiceRef } from '../../../../controller/targets/types.js';
import { agent, get, load, startHarness, type Harness, type Reply } from './helpers.js';

const ref: ServiceRef = { environment: 'staging', service: 'web' };
const here = dirname(fileURLToPath(import.meta.url));
const execFileAsync = promisify(execFile);

function versions(replies: Reply[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of replies) {
    const version = (JSON.parse(r.body) as { version: string }).version;
    counts[version] = (counts[version] ?? 0) + 1;
  }
  return counts;
}

describe('the local target with a weighted proxy', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
    await h.target.ensureTrack(ref, 'stable', h.spec(h.v1, { replicas: 2 }));
    await h.target.ensureTrack(ref, 'canary', h.spec(h.v2, { replicas: 1 }));
  });

  afterAll(async () => {
    await h.dispose();
    agent.destroy();
  });

  it('runs the image entrypoint as one process per replica, each with its own PORT, and reports them ready', async () => {
    const observation = await h.target.observe(ref);
    expect(observation.stable).toEqual({ digest: h.v1.digest, replicas: 2, readyReplicas: 2, restarts: 0 });
    expect(observation.canary).toEqual({ digest: h.v2.digest, replicas: 1, readyReplicas: 1, restarts: 0 });
    expect(observation.endpoint).toBe(`http://127.0.0.1:${h.proxyPort}`);
    const stable = h.target.instances(ref, 'stable');
    expect(new Set(stable.map((i) => i.port)).size).toBe(2);
    expect(new Set(stable.map((i) => i.pid)).size).toBe(2);
  });

  describe('with no canary weight', () => {
    it('sends every request to stable, round-robin over its instances', async () => {
      const replies = await load(h.proxyPort, 200, 8);
      expect(versions(replies)).toEqual({ v1: 200 });
      const ports = new Set(replies.map((r) => (JSON.parse(r.body) as { port: number }).port));
      expect(ports.size).toBe(2);
      expect(replies.every((r) => r.headers['x-slipway-track'] === 'stable')).toBe(true);
    });
  });

  describe('at a canary weight of 30 under concurrent load', () => {
    it('sends 30% (±2 points) of 10,000 requests to the canary', async () => {
      await h.target.setWeight(ref, 30);
      expect((await h.target.observe(ref)).canaryWeight).toBe(30);
      // The load comes from another process, so the proxy has this one to itself.
      const { stdout } = await execFileAsync(process.execPath, [join(here, 'count-versions.mjs'), `http://127.0.0.1:${h.proxyPort}/`, '10000', '32']);
      const counts = JSON.parse(stdout) as Record<string, number>;
      expect(Object.keys(counts).sort()).toEqual(['v1', 'v2']);
      expect(counts.v1! + counts.v2!).toBe(10_000);
      expect(Math.abs(counts.v2! / 100 - 30)).toBeLessThanOrEqual(2);
    });
  });

  describe('when a request carries x-slipway-track', () => {
    it('goes to the named track whatever the weight', async () => {
      await h.target.setWeight(ref, 0);
      const canary = await load(h.proxyPort, 50, 5, { 'x-slipway-track': 'canary' });
      expect(versions(canary)).toEqual({ v2: 50 });
      await h.target.setWeight(ref, 100);
      const stable = await load(h.proxyPort, 50, 5, { 'x-slipway-track': 'stable' });
      expect(versions(stable)).toEqual({ v1: 50 });
    });

    it('answers 400 naming the header when the value is neither stable nor canary', async () => {
      const reply = await get(h.proxyPort, '/', { 'x-slipway-track': 'blue' });
      expect(reply.status).toBe(400);
      expect(reply.body).toContain('x-slipway-track');
    });
  });

  describe('when the weight goes back to 0 (the rollback path)', () => {
    it('sends the very next requests to stable only', async () => {
      await h.target.setWeight(ref, 100);
      expect(versions(await load(h.proxyPort, 20, 4))).toEqual({ v2: 20 });
      await h.target.setWeight(ref, 0);
      expect(versions(await load(h.proxyPort, 200, 8))).toEqual({ v1: 200 });
    });
  });

  describe('when the weight goes to 0 under concurrent load', () => {
    it('sends no request issued after setWeight(0) returned to the canary', async () => {
      await h.target.setWeight(ref, 50);
      let rolledBack = false;
      let stop = false;
      const afterRollback: Reply[] = [];
      const beforeRollback: Reply[] = [];
      const workers = Array.from({ length: 8 }, async () => {
        while (!stop) {
          const issuedAfter = rolledBack;
          const reply = await get(h.proxyPort, '/');
          (issuedAfter ? afterRollback : beforeRollback).push(reply);
          if (afterRollback.length >= 400) stop = true;
        }
      });
      while (beforeRollback.length < 100) await new Promise((r) => setTimeout(r, 5));
      await h.target.setWeight(ref, 0);
      rolledBack = true;
      await Promise.all(workers);
      expect(versions(beforeRollback).v2).toBeGreaterThan(0);
      expect(versions(afterRollback)).toEqual({ v1: afterRollback.length });
    });
  });

  describe('when the canary answers 5xx', () => {
    it('counts requests, 5xx and latency per track, in process and at /metrics', async () => {
      const start = new Date();
      await h.target.ensureTrack(ref, 'canary', h.spec(h.v2, { env: { FAIL_STATUS: '503' } }));
      await h.target.setWeight(ref, 50);
      const replies = await load(h.proxyPort, 400, 8);
      const end = new Date(Date.now() + 1);
      expect(replies.filter((r) => r.status === 503)).toHaveLength(200);

      const canary = h.target.requestLog.samples(ref, 'canary', start, end);
      const stable = h.target.requestLog.samples(ref, 'stable', start, end);
      expect(canary).toHaveLength(200);
      expect(canary.every((s) => s.status === 503 && s.latencyMs >= 0)).toBe(true);
      expect(stable).toHaveLength(200);
      expect(stable.every((s) => s.status === 200)).toBe(true);

      const metrics = await serveMetrics(h.target.metricsRegistry);
      try {
        const port = Number(new URL(metrics.url).port);
        const text = (await get(port, '/metrics')).body;
        expect(text).toContain('slipway_proxy_requests_total{environment="staging",service="web",track="canary",code="503"} 200');
        expect(text).toMatch(/slipway_proxy_request_duration_seconds_count\{environment="staging",service="web",track="canary",code="503"\} 200/);
        expect(text).toContain('slipway_proxy_canary_weight{environment="staging",service="web"} 50');
      } finally {
        await metrics.close();
      }
    });
  });

  describe('when the canary is promoted', () => {
    it('makes the canary stable, sends it all traffic and stops the old stable processes', async () => {
      const oldStablePids = h.target.instances(ref, 'stable').map((i) => i.pid!);
      await h.target.ensureTrack(ref, 'canary', h.spec(h.v2));
      await h.target.promote(ref);
      const observation = await h.target.observe(ref);
      expect(observation.stable?.digest).toBe(h.v2.digest);
      expect(observation.canary).toBeUndefined();
      expect(observation.canaryWeight).toBe(0);
      expect(versions(await load(h.proxyPort, 50, 5))).toEqual({ v2: 50 });
      for (const pid of oldStablePids) expect(() => process.kill(pid, 0)).toThrow();
      await h.target.promote(ref); // idempotent
      expect((await h.target.observe(ref)).stable?.digest).toBe(h.v2.digest);
    });
  });
});
