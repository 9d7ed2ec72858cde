import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer as createHttpServer, request, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { ProxyMetrics, ProxyRequestLog, serveMetrics, ServiceProxy, type Upstream } from '../../../controller/proxy/index.js';
import { startPrometheus, type TestPrometheus } from '../../support/prometheus.js';

async function query(prometheus: TestPrometheus, expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  if (body.status !== 'success') throw new Error(`query ${expr} failed: ${JSON.stringify(body)}`);
  return body.data.result;
}

/** Every socket of every test server, so afterAll can end them all (upgraded ones included). */
const openSockets = new Set<Socket>();
function createServer(listener?: RequestListener): Server {
  const server = createHttpServer(listener);
  server.on('connection', (socket: Socket) => {
    openSockets.add(socket);
    socket.once('close', () => openSockets.delete(socket));
  });
  return server;
}

async function samplesEventually(log: ProxyRequestLog, start: Date): Promise<number[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = log.samples({ environment: 'staging', service: 'web' }, 'canary', start, new Date(Date.now() + 1));
    if (found.length > 0 || Date.now() > deadline) return found.map((s) => s.status);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

async function upstreamServer(name: string, seen: Seen[], behaviour: { status?: number; delayMs?: number } = {}): Promise<{ server: Server; upstream: Upstream }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const reply = () => {
        res.writeHead(behaviour.status ?? 200, { 'content-type': 'text/plain', 'x-upstream': name, connection: 'keep-alive', 'keep-alive': 'timeout=5' });
        res.end(`${name}:${Buffer.concat(chunks).length}`);
      };
      if (behaviour.delayMs) setTimeout(reply, behaviour.delayMs);
      else reply();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { server, upstream: { id: name, host: '127.0.0.1', port } };
}

function send(
  port: number,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path ?? '/', headers: options.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('the service proxy', () => {
  const seenStable: Seen[] = [];
  const seenCanary: Seen[] = [];
  const servers: Server[] = [];
  let stable: Upstream;
  let canary: Upstream;
  let proxy: ServiceProxy;
  let metrics: ProxyMetrics;
  let log: ProxyRequestLog;
  const upstreamErrors: string[] = [];

  beforeAll(async () => {
    const s = await upstreamServer('stable-0', seenStable);
    const c = await upstreamServer('canary-0', seenCanary, { status: 500 });
    servers.push(s.server, c.server);
    stable = s.upstream;
    canary = c.upstream;
    metrics = new ProxyMetrics();
    log = new ProxyRequestLog();
    proxy = await ServiceProxy.start({
      environment: 'staging',
      service: 'web',
      metrics,
      requestLog: log,
      upstreamTimeoutMs: 300,
      onUpstreamError: (u) => upstreamErrors.push(u.id),
    });
    proxy.setRoutes({ stable: [stable], canary: [canary], canaryWeight: 0 });
  });

  afterAll(async () => {
    await proxy.close();
    for (const socket of openSockets) socket.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  it('passes method, path, query and body through, and tells the instance who asked', async () => {
    const body = 'x'.repeat(200_000);
    const reply = await send(proxy.port, {
      method: 'POST',
      path: '/orders?id=7',
      headers: { 'content-type': 'text/plain', 'x-request-id': 'abc', 'x-slipway-track': 'stable', connection: 'keep-alive, x-drop-me', 'x-drop-me': '1' },
      body,
    });
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('stable-0:200000');
    expect(reply.headers['x-upstream']).toBe('stable-0');
    expect(reply.headers['x-slipway-track']).toBe('stable');
    expect(reply.headers['keep-alive']).not.toBe('timeout=5'); // the instance's hop-by-hop header stays between it and the proxy
    const seen = seenStable.at(-1)!;
    expect(seen).toMatchObject({ method: 'POST', url: '/orders?id=7' });
    expect(seen.body).toHaveLength(200_000);
    expect(seen.headers['x-request-id']).toBe('abc');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-host']).toBe(`127.0.0.1:${proxy.port}`);
    expect(seen.headers['x-slipway-track']).toBeUndefined();
    expect(seen.headers['x-drop-me']).toBeUndefined();
  });

  it('records each request on its track with its status, in the log and in the Prometheus series', async () => {
    const start = new Date();
    proxy.setWeight(50);
    for (let i = 0; i < 20; i++) await send(proxy.port);
    proxy.setWeight(0);
    const end = new Date(Date.now() + 1);
    const canarySamples = log.samples({ environment: 'staging', service: 'web' }, 'canary', start, end);
    const stableSamples = log.samples({ environment: 'staging', service: 'web' }, 'stable', start, end);
    expect(canarySamples.map((s) => s.status)).toEqual(Array(10).fill(500));
    expect(stableSamples.map((s) => s.status)).toEqual(Array(10).fill(200));
    const text = await metrics.registry.metrics();
    expect(text).toContain('slipway_proxy_requests_total{environment="staging",service="web",track="canary",code="500"} 10');
  });

  it('answers 502 naming the instance when it refuses the connection, counts it, and reports the instance', async () => {
    const dead = await upstreamServer('dead', []);
    dead.server.close();
    await new Promise((r) => dead.server.once('close', r));
    proxy.setUpstreams('canary', [dead.upstream]);
    const reply = await send(proxy.port, { headers: { 'x-slipway-track': 'canary' } });
    expect(reply.status).toBe(502);
    expect(reply.body).toContain('instance dead');
    expect(upstreamErrors).toContain('dead');
    expect(await metrics.registry.metrics()).toContain('track="canary",code="502"} 1');
    proxy.setUpstreams('canary', [canary]);
  });

  it('answers 504 when the instance sends nothing within the upstream timeout', async () => {
    const slow = await upstreamServer('slow', [], { delayMs: 2_000 });
    servers.push(slow.server);
    proxy.setUpstreams('canary', [slow.upstream]);
    const reply = await send(proxy.port, { headers: { 'x-slipway-track': 'canary' } });
    expect(reply.status).toBe(504);
    expect(reply.body).toContain('no response within 300 ms');
    proxy.setUpstreams('canary', [canary]);
  });

  it('joins an upgraded connection (WebSocket-style) to an instance of the chosen track', async () => {
    const echo = createServer();
    echo.on('upgrade', (req, socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade}\r\nconnection: Upgrade\r\n\r\n`);
      socket.on('data', (chunk: Buffer) => socket.write(`echo:${chunk.toString()}`));
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', () => resolve()));
    servers.push(echo);
    const address = echo.address();
    proxy.setUpstreams('canary', [{ id: 'echo', host: '127.0.0.1', port: typeof address === 'object' && address ? address.port : 0 }]);
    const start = new Date();
    const answer = await new Promise<{ track: string | string[] | undefined; echoed: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: proxy.port, path: '/chat', headers: { connection: 'Upgrade', upgrade: 'echo', 'x-slipway-track': 'canary' }, agent: false });
      req.on('upgrade', (res, socket) => {
        socket.once('data', (chunk: Buffer) => {
          socket.destroy();
          resolve({ track: res.headers['x-slipway-track'], echoed: chunk.toString() });
        });
        socket.write('hello');
      });
      req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    expect(answer).toEqual({ track: 'canary', echoed: 'echo:hello' });
    const samples = log.samples({ environment: 'staging', service: 'web' }, 'canary', start, new Date(Date.now() + 1));
    expect(samples.map((s) => s.status)).toEqual([101]);
    proxy.setUpstreams('canary', [canary]);
  });

  it('records a client that hangs up before the answer as 499, not as a service error', async () => {
    const slow = await upstreamServer('slow-for-client', [], { delayMs: 150 });
    servers.push(slow.server);
    proxy.setUpstreams('canary', [slow.upstream]);
    const start = new Date();
    await new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port: proxy.port, path: '/', headers: { 'x-slipway-track': 'canary' }, agent: false });
      req.on('error', () => resolve());
      req.end();
      setTimeout(() => req.destroy(), 30);
    });
    expect(await samplesEventually(log, start)).toEqual([499]);
    proxy.setUpstreams('canary', [canary]);
  });

  it('records a response the instance breaks off mid-body as 502', async () => {
    const breaking = createServer((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    await new Promise<void>((resolve) => breaking.listen(0, '127.0.0.1', () => resolve()));
    servers.push(breaking);
    const address = breaking.address();
    proxy.setUpstreams('canary', [{ id: 'breaking', host: '127.0.0.1', port: typeof address === 'object' && address ? address.port : 0 }]);
    const start = new Date();
    await expect(send(proxy.port, { headers: { 'x-slipway-track': 'canary' } })).rejects.toThrow();
    expect(await samplesEventually(log, start)).toEqual([502]);
    proxy.setUpstreams('canary', [canary]);
  });

  it('closing with a grace period lets requests under way finish and refuses new ones', async () => {
    const slow = await upstreamServer('slow-at-close', [], { delayMs: 200 });
    servers.push(slow.server);
    const closing = await ServiceProxy.start({ environment: 'staging', service: 'closing', metrics, requestLog: log });
    closing.setRoutes({ stable: [slow.upstream], canary: [], canaryWeight: 0 });
    const pending = send(closing.port);
    while (closing.inFlight(slow.upstream.id) === 0) await new Promise((r) => setTimeout(r, 5));
    const closed = closing.close(5_000);
    await expect(send(closing.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await pending).toMatchObject({ status: 200, body: 'slow-at-close:0' });
    await closed;
  });

  it('refuses to start on a port already in use, saying what to change', async () => {
    await expect(ServiceProxy.start({ environment: 'staging', service: 'other', port: proxy.port, metrics, requestLog: log })).rejects.toMatchObject({
      code: 'PROXY_PORT_IN_USE',
      message: expect.stringContaining('spec.proxyPort'),
    });
  });

  describe('scraped by a real Prometheus', () => {
    let prometheus: TestPrometheus;
    let endpoint: { url: string; close(): Promise<void> };

    beforeAll(async () => {
      endpoint = await serveMetrics(metrics.registry);
      prometheus = await startPrometheus({ targets: [new URL(endpoint.url).host] });
    });

    afterAll(async () => {
      await prometheus.stop();
      await endpoint.close();
    });

    it('exposes requests by environment, service, track and code that PromQL can sum', async () => {
      const expected = await metrics.registry.getSingleMetricAsString('slipway_proxy_requests_total');
      const canary5xx = Number(/track="canary",code="500"} (\d+)/.exec(expected)![1]);
      const deadline = Date.now() + 20_000;
      let result: Awaited<ReturnType<typeof query>> = [];
      while (Date.now() < deadline) {
        result = await query(prometheus, 'sum by (track) (slipway_proxy_requests_total{environment="staging",service="web",code=~"5.."})');
        if (result.length > 0) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const byTrack = Object.fromEntries(result.map((r) => [r.metric.track, Number(r.value[1])]));
      const canary502 = Number(/track="canary",code="502"} (\d+)/.exec(expected)![1]);
      expect(canary502).toBe(2);
      expect(byTrack.canary).toBe(canary5xx + canary502 + 1); // the 500s, the two 502s and the 504
      expect(byTrack.stable).toBeUndefined();
    });
  });
});
