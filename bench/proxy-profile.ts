/**
 * Profile the local target's proxy alone: one instance (the test service, a child process), one ServiceProxy in
 * this process, and autocannon in another process. Run under `node --cpu-prof --import tsx bench/proxy-profile.ts`
 * to see where the proxy's CPU goes. Prints autocannon's summary for direct and proxied runs.
 * Env: PROFILE_SECONDS (default 5), PROFILE_CONNECTIONS (default 32), PROFILE_MODE (proxy|direct|both|relay, default
 * both; relay adds a raw TCP relay in this process, the floor to compare the proxy's CPU per request with).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ProxyMetrics, ProxyRequestLog, ServiceProxy } from '../controller/proxy/index.js';
import { startTcpRelay } from './tcp-relay.js';

const execFileAsync = promisify(execFile);
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.PROFILE_CONNECTIONS ?? 32);
const MODE = process.env.PROFILE_MODE ?? 'both';

const SERVER = `
const http = require('node:http');
const body = JSON.stringify({ track: 'stable', version: 'v1', pid: process.pid });
http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('ready'));
`;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function autocannon(url: string, connections: number, seconds: number): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const { stdout } = await execFileAsync(process.execPath, ['node_modules/autocannon/autocannon.js', '--json', '-c', String(connections), '-d', String(seconds), url], { maxBuffer: 1 << 24 });
  const r = JSON.parse(stdout) as { requests: { average: number }; latency: { p50: number; p99: number }; errors: number; non2xx: number };
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx };
}

const dir = await mkdtemp(join(tmpdir(), 'slipway-proxy-profile-'));
await writeFile(join(dir, 'server.cjs'), SERVER);
const port = await freePort();
const instance = spawn(process.execPath, [join(dir, 'server.cjs')], { env: { PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise<void>((resolve) => instance.stdout!.once('data', () => resolve()));
const proxy = await ServiceProxy.start({ environment: 'bench', service: 'web', metrics: new ProxyMetrics(), requestLog: new ProxyRequestLog() });
proxy.setRoutes({ stable: [{ id: 'bench/web/stable#0', host: '127.0.0.1', port }], canary: [], canaryWeight: 0 });
try {
  if (MODE !== 'proxy') console.log('direct', await autocannon(`http://127.0.0.1:${port}/`, CONNECTIONS, SECONDS));
  if (MODE !== 'direct') {
    const before = process.cpuUsage();
    const result = await autocannon(`${proxy.endpoint}/`, CONNECTIONS, SECONDS);
    const used = process.cpuUsage(before);
    console.log('proxy ', result, `proxy CPU ${((used.user + used.system) / (result.rps * SECONDS)).toFixed(1)} µs/request`);
  }
  if (MODE === 'relay') {
    const { relay, url } = await startTcpRelay(port);
    const before = process.cpuUsage();
    const result = await autocannon(url, CONNECTIONS, SECONDS);
    const used = process.cpuUsage(before);
    console.log('relay ', result, `relay CPU ${((used.user + used.system) / (result.rps * SECONDS)).toFixed(1)} µs/request`);
    relay.close();
  }
} finally {
  await proxy.close();
  instance.kill();
  await rm(dir, { recursive: true, force: true });
}
