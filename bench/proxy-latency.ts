/**
 * Open-loop latency at a fixed request rate, with sub-millisecond resolution (autocannon's histogram counts whole
 * milliseconds, too coarse for "p99 overhead under 2 ms"). Requests are sent on schedule, whether or not earlier
 * ones have answered, over up to `maxSockets` keep-alive connections; each latency is measured from the moment the
 * request was due, so a server that falls behind is charged for its queue (no coordinated omission).
 * Usage: node --import tsx bench/proxy-latency.ts <url> <requestsPerSecond> <durationMs> [maxSockets]
 * Prints one JSON line: requests, errors, achieved rate, p50/p90/p99/max in ms.
 */
import { Agent, request } from 'node:http';
import { pathToFileURL } from 'node:url';

export interface LatencyResult {
  requests: number;
  errors: number;
  requestsPerSecond: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export async function fixedRate(url: string, rate: number, durationMs: number, maxSockets = 64): Promise<LatencyResult> {
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets });
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  let pending = 0;
  const started = performance.now();
  const total = Math.round((rate * durationMs) / 1000);
  let allSent!: () => void;
  const done = new Promise<void>((resolve) => (allSent = resolve));
  const finishOne = () => {
    pending--;
    if (sent === total && pending === 0) allSent();
  };
  const fire = (dueAt: number) => {
    pending++;
    const req = request({ host: target.hostname, port: target.port, path: target.pathname, agent }, (res) => {
      res.resume();
      res.once('end', () => {
        latencies.push(performance.now() - dueAt);
        if ((res.statusCode ?? 0) >= 500) errors++;
        finishOne();
      });
    });
    req.once('error', () => {
      errors++;
      finishOne();
    });
    req.end();
  };
  // A 1 ms tick sends every request that has come due since the last one (timers are not finer than that).
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - started) * rate) / 1000));
      while (sent < due) {
        fire(started + (sent * 1000) / rate);
        sent++;
      }
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  if (pending > 0) await done;
  const elapsed = performance.now() - started;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { requests: latencies.length, errors, requestsPerSecond: (latencies.length / elapsed) * 1000, p50Ms: q(0.5), p90Ms: q(0.9), p99Ms: q(0.99), maxMs: latencies.at(-1) ?? NaN };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [url, rate, durationMs, maxSockets] = process.argv.slice(2);
  const result = await fixedRate(url!, Number(rate), Number(durationMs), maxSockets ? Number(maxSockets) : undefined);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
