/**
 * A simple closed-loop HTTP load generator on loopback: `concurrency` keep-alive connections each send the next
 * GET as soon as the previous answer ends, for `durationMs`. Prints one JSON line of results.
 * Usage: node --import tsx bench/loadgen.ts <url> <concurrency> <durationMs>
 */
import { Agent, request } from 'node:http';
import { pathToFileURL } from 'node:url';

export interface LoadResult {
  requests: number;
  errors: number;
  durationMs: number;
  requestsPerSecond: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
}

export async function runLoad(url: string, concurrency: number, durationMs: number): Promise<LoadResult> {
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const stopAt = started + durationMs;
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = request({ host: target.hostname, port: target.port, path: target.pathname, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          latencies.push(performance.now() - t0);
          if ((res.statusCode ?? 0) >= 500) errors++;
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end();
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < stopAt) await one();
    }),
  );
  const elapsed = performance.now() - started;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return {
    requests: latencies.length,
    errors,
    durationMs: elapsed,
    requestsPerSecond: (latencies.length / elapsed) * 1000,
    p50Ms: q(0.5),
    p90Ms: q(0.9),
    p99Ms: q(0.99),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [url, concurrency, durationMs] = process.argv.slice(2);
  const result = await runLoad(url!, Number(concurrency), Number(durationMs));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
