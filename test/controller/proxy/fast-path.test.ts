import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Agent, createServer as createHttpServer, request, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import { connect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { ProxyMetrics, ProxyRequestLog, ServiceProxy, type Upstream } from '../../../controller/proxy/index.js';
import { ChunkedScanner } from '../../../controller/proxy/http1.js';

const ref = { environment: 'staging', service: 'api' };

/** Every socket of every server here, so afterAll can end them all. */
const openSockets = new Set<Socket>();
const servers: (Server | NetServer)[] = [];

function track(server: Server | NetServer): void {
  servers.push(server);
  server.on('connection', (socket: Socket) => {
    openSockets.add(socket);
    socket.once('close', () => openSockets.delete(socket));
  });
}

async function listen(server: Server | NetServer, id: string): Promise<Upstream> {
  track(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  return { id, host: '127.0.0.1', port: typeof address === 'object' && address ? address.port : 0 };
}

async function httpUpstream(id: string, listener: RequestListener): Promise<Upstream> {
  return listen(createHttpServer(listener), id);
}

/** Fails with what was awaited instead of hanging the test file. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

/**
 * A raw client: writes `pieces` (with a pause between them so they arrive as separate reads), then collects
 * everything the proxy sends until `done(text)` says so or the proxy closes the connection.
 */
function raw(port: number, pieces: (string | Buffer)[], done: (text: string) => boolean = () => false): Promise<{ text: string; closed: boolean }> {
  return within(
    new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      let settled = false;
      const finish = (closed: boolean) => {
        if (settled) return;
        settled = true;
        socket.destroy();
        resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
      };
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        if (done(Buffer.concat(chunks).toString('latin1'))) finish(false);
      });
      socket.on('close', () => finish(true));
      socket.on('error', (err) => (settled ? undefined : reject(err)));
      void (async () => {
        for (const piece of pieces) {
          if (socket.destroyed) return;
          socket.write(piece);
          await new Promise((r) => setTimeout(r, 15));
        }
      })();
    }),
    15_000,
    'the proxy to answer a raw client',
  );
}

/** Splits a stream of HTTP/1.1 responses with Content-Length or chunked bodies (enough for these tests). */
function responses(text: string): { status: number; headers: Record<string, string>; body: string }[] {
  const out: { status: number; headers: Record<string, string>; body: string }[] = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1 ')) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) break;
    const [statusLine, ...lines] = rest.slice(0, headEnd).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
    rest = rest.slice(headEnd + 4);
    let body = '';
    if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const sizeEnd = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, sizeEnd), 16);
        if (sizeEnd < 0 || Number.isNaN(size)) return out; // incomplete
        if (size === 0) {
          const trailerEnd = rest.indexOf('\r\n\r\n', sizeEnd - 2);
          if (trailerEnd < 0) return out;
          rest = rest.slice(trailerEnd + 4);
          break;
        }
        if (rest.length < sizeEnd + 2 + size + 2) return out;
        body += rest.slice(sizeEnd + 2, sizeEnd + 2 + size);
        rest = rest.slice(sizeEnd + 2 + size + 2);
      }
    } else if (headers['content-length']) {
      const length = Number(headers['content-length']);
      if (rest.length < length) return out;
      body = rest.slice(0, length);
      rest = rest.slice(length);
    }
    out.push({ status: Number(statusLine!.split(' ')[1]), headers, body });
  }
  return out;
}

const countResponses = (n: number) => (text: string) => responses(text).length >= n;

function get(port: number, path: string, agent: Agent | false, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return within(
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    }),
    15_000,
    `GET ${path} through the proxy`,
  );
}

async function samplesEventually(log: ProxyRequestLog, trackName: 'stable' | 'canary', since: Date, count: number): Promise<number[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = log.samples(ref, trackName, since, new Date(Date.now() + 1)).map((s) => s.status);
    if (found.length >= count) return found;
    if (Date.now() > deadline) throw new Error(`expected ${count} ${trackName} samples since ${since.toISOString()}, have ${JSON.stringify(found)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the proxy fast path', () => {
  let proxy: ServiceProxy;
  let log: ProxyRequestLog;
  let metrics: ProxyMetrics;
  let stable: Upstream;
  let canary: Upstream;
  /** Connections the stable instance accepted, to see keep-alive reuse. */
  let stableConnections = 0;
  const upstreamErrors: string[] = [];
  const seenHeaders: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    const stableServer = createHttpServer((req, res) => {
      seenHeaders.push(req.headers);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url!, 'http://x');
        const body = Buffer.concat(chunks).toString('utf8');
        const reply = () => {
          if (url.pathname === '/chunked') {
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.write('one,');
            setTimeout(() => res.end('two,three'), 10);
            return;
          }
          if (url.pathname === '/big') {
            const big = Buffer.alloc(4 * 1024 * 1024, 'z');
            res.writeHead(200, { 'content-length': big.length }).end(big);
            return;
          }
          if (url.pathname === '/empty') {
            res.writeHead(204, { 'x-empty': 'yes' }).end();
            return;
          }
          if (url.pathname === '/head') {
            res.writeHead(200, { 'content-length': '1000', 'x-head': 'yes' }).end(req.method === 'HEAD' ? undefined : 'x'.repeat(1000));
            return;
          }
          const answer = JSON.stringify({ track: 'stable', method: req.method, path: req.url, body });
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }).end(answer);
        };
        const delay = Number(url.searchParams.get('delay') ?? 0);
        if (delay > 0) setTimeout(reply, delay);
        else reply();
      });
    });
    stableServer.on('connection', () => stableConnections++);
    stable = await listen(stableServer, 'stable-0');
    stableServer.on('upgrade', (req, socket, head: Buffer) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade}\r\nconnection: Upgrade\r\n\r\n`);
      // Bytes the client sent right behind its head (before the 101) arrive as `head`.
      if (head.length > 0) socket.write(`echo:${head.toString()}`);
      socket.on('data', (chunk: Buffer) => socket.write(`echo:${chunk.toString()}`));
    });
    canary = await httpUpstream('canary-0', (_req, res) => {
      const answer = JSON.stringify({ track: 'canary' });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }).end(answer);
    });
    metrics = new ProxyMetrics();
    log = new ProxyRequestLog();
    proxy = await ServiceProxy.start({ ...ref, metrics, requestLog: log, upstreamTimeoutMs: 2_000, onUpstreamError: (u) => upstreamErrors.push(u.id) });
    proxy.setRoutes({ stable: [stable], canary: [canary], canaryWeight: 0 });
  });

  afterAll(async () => {
    await proxy.close();
    for (const socket of openSockets) socket.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  describe('when a client pipelines requests on one connection', () => {
    it('answers them in the order they were sent, even when the first takes longest', async () => {
      const { text } = await raw(
        proxy.port,
        [
          'GET /first?delay=200 HTTP/1.1\r\nHost: a\r\n\r\nGET /second?delay=50 HTTP/1.1\r\nHost: a\r\n\r\n' +
            'POST /third HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /fourth HTTP/1.1\r\nHost: a\r\n\r\n',
        ],
        countResponses(4),
      );
      const answers = responses(text).map((r) => JSON.parse(r.body) as { path: string; body: string });
      expect(answers.map((a) => a.path)).toEqual(['/first?delay=200', '/second?delay=50', '/third', '/fourth']);
      expect(answers[2]!.body).toBe('hello');
    });
  });

  describe('when a POST body arrives in pieces after its head', () => {
    it('streams the whole body to the instance and tells the instance who asked', async () => {
      const { text } = await raw(
        proxy.port,
        ['POST /orders HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 10.0.0.1\r\nContent-Length: 11\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n\r\nhel', 'lo ', 'world'],
        countResponses(1),
      );
      const [answer] = responses(text);
      expect(answer!.status).toBe(200);
      expect(answer!.headers['x-slipway-track']).toBe('stable');
      expect(JSON.parse(answer!.body)).toMatchObject({ method: 'POST', path: '/orders', body: 'hello world' });
      const seen = seenHeaders.at(-1)!;
      expect(seen['x-forwarded-for']).toBe('10.0.0.1, 127.0.0.1');
      expect(seen['x-forwarded-host']).toBe('shop.example');
      expect(seen['x-forwarded-proto']).toBe('http');
      expect(seen['x-drop']).toBeUndefined();
    });
  });

  describe('when the instance answers with a chunked body', () => {
    it('passes the chunks through whole and keeps the client connection usable', async () => {
      const { text } = await raw(proxy.port, ['GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n', 'GET /after HTTP/1.1\r\nHost: a\r\n\r\n'], countResponses(2));
      const [chunked, after] = responses(text);
      expect(chunked!.headers['transfer-encoding']).toBe('chunked');
      expect(chunked!.body).toBe('one,two,three');
      expect(JSON.parse(after!.body)).toMatchObject({ path: '/after' });
    });
  });

  describe('when the request is a HEAD or the answer a 204', () => {
    it('expects no body after the head and goes on with the next request', async () => {
      const { text } = await raw(
        proxy.port,
        ['HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n', 'GET /empty HTTP/1.1\r\nHost: a\r\n\r\n', 'GET /next HTTP/1.1\r\nHost: a\r\n\r\n'],
        (t) => t.includes('"path":"/next"'),
      );
      // responses() reads the HEAD answer's Content-Length as a body, so split the heads by hand.
      const heads = text.split('HTTP/1.1 ').slice(1);
      expect(heads).toHaveLength(3);
      expect(heads[0]).toMatch(/^200 /);
      expect(heads[0]).toMatch(/content-length: 1000/i);
      expect(heads[0]!.endsWith('\r\n\r\n')).toBe(true);
      expect(heads[1]).toMatch(/^204 /);
      expect(heads[1]).toMatch(/x-empty: yes/i);
      expect(heads[2]).toMatch(/"path":"\/next"/);
    });
  });

  describe('when a client reads a large answer slowly', () => {
    it('passes all of it on, then answers the next request on the same connection', async () => {
      const received = await within(
        new Promise<{ bigBytes: number; after: string }>((resolve, reject) => {
          const socket = connect(proxy.port, '127.0.0.1');
          let text = Buffer.alloc(0);
          socket.on('error', reject);
          socket.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\nGET /after-big HTTP/1.1\r\nHost: a\r\n\r\n');
          socket.pause();
          setTimeout(() => {
            socket.on('data', (chunk: Buffer) => {
              text = Buffer.concat([text, chunk]);
              const s = text.toString('latin1');
              if (s.includes('"path":"/after-big"')) {
                socket.destroy();
                const headEnd = s.indexOf('\r\n\r\n') + 4;
                resolve({ bigBytes: s.slice(headEnd).indexOf('HTTP/1.1 '), after: s.slice(s.lastIndexOf('HTTP/1.1 ')) });
              }
            });
            socket.resume();
          }, 300);
        }),
        20_000,
        'the large answer and the next one',
      );
      expect(received.bigBytes).toBe(4 * 1024 * 1024);
      expect(received.after).toMatch(/^HTTP\/1\.1 200 /);
      expect((await get(proxy.port, '/after-slow-client', false)).status).toBe(200);
    });

    it('does not count the time it waits for a slow client against the instance (no 502 after the upstream timeout)', async () => {
      const strict = await ServiceProxy.start({ environment: 'staging', service: 'strict', metrics, requestLog: log, upstreamTimeoutMs: 100 });
      strict.setRoutes({ stable: [stable], canary: [], canaryWeight: 0 });
      try {
        const bytes = await within(
          new Promise<number>((resolve, reject) => {
            const socket = connect(strict.port, '127.0.0.1');
            let total = 0;
            socket.on('error', reject);
            socket.write('GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
            socket.pause();
            // Reading starts well after the 100 ms upstream timeout, and the answer does not fit in socket buffers.
            setTimeout(() => {
              socket.on('data', (chunk: Buffer) => (total += chunk.length));
              socket.on('end', () => resolve(total));
              socket.resume();
            }, 600);
          }),
          20_000,
          'the large answer through a proxy with a short upstream timeout',
        );
        expect(bytes).toBeGreaterThan(4 * 1024 * 1024);
        const samples = log.samples({ environment: 'staging', service: 'strict' }, 'stable', new Date(0), new Date(Date.now() + 1));
        expect(samples.map((s) => s.status)).toEqual([200]);
      } finally {
        await strict.close();
      }
    });
  });

  describe('between requests', () => {
    it('reuses its keep-alive sockets to the instance', async () => {
      await get(proxy.port, '/warm', false);
      const before = stableConnections;
      for (let i = 0; i < 20; i++) expect((await get(proxy.port, `/again/${i}`, false)).status).toBe(200);
      expect(stableConnections - before).toBe(0);
    });
  });

  describe('when the instance closes the connection in the middle of an answer', () => {
    it('cuts the client connection, records a 502 and reports the instance', async () => {
      const breaking = await listen(
        createNetServer((socket) => {
          socket.once('data', () => {
            socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n');
            setTimeout(() => socket.destroy(), 20);
          });
        }),
        'breaking',
      );
      proxy.setUpstreams('canary', [breaking]);
      const since = new Date();
      const { text, closed } = await raw(proxy.port, ['GET / HTTP/1.1\r\nHost: a\r\nx-slipway-track: canary\r\n\r\n']);
      expect(closed).toBe(true);
      expect(text).toContain('5\r\nhello\r\n');
      expect(text).not.toMatch(/0\r\n\r\n$/);
      expect(await samplesEventually(log, 'canary', since, 1)).toEqual([502]);
      expect(upstreamErrors).toContain('breaking');
      proxy.setUpstreams('canary', [canary]);
    });

    it('answers 502 when the instance closes before any answer, without hanging', async () => {
      const silent = await listen(
        createNetServer((socket) => socket.once('data', () => socket.destroy())),
        'silent',
      );
      proxy.setUpstreams('canary', [silent]);
      const since = new Date();
      const { text } = await raw(proxy.port, ['POST / HTTP/1.1\r\nHost: a\r\nx-slipway-track: canary\r\ncontent-length: 2\r\n\r\nhi'], countResponses(1));
      expect(responses(text)[0]).toMatchObject({ status: 502, headers: { 'x-slipway-track': 'canary' } });
      expect(responses(text)[0]!.body).toContain('instance silent');
      expect(await samplesEventually(log, 'canary', since, 1)).toEqual([502]);
      proxy.setUpstreams('canary', [canary]);
    });
  });

  describe('when the instance closes a reused keep-alive socket as the next request arrives', () => {
    it('sends a GET once more on a new socket, but answers a POST 502 rather than send it twice', async () => {
      let connections = 0;
      const requestsSeen: string[] = [];
      const flaky = await listen(
        createNetServer((socket) => {
          connections++;
          let served = 0;
          socket.on('data', (chunk: Buffer) => {
            requestsSeen.push(chunk.toString('latin1').split(' ').slice(0, 2).join(' '));
            if (served++ > 0) {
              socket.destroy(); // the keep-alive race: the instance gave up on this socket just now
              return;
            }
            socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=30\r\n\r\nok');
          });
        }),
        'flaky',
      );
      proxy.setUpstreams('canary', [flaky]);
      const forced = { 'x-slipway-track': 'canary' };
      expect((await get(proxy.port, '/one', false, forced)).body).toBe('ok');
      expect((await get(proxy.port, '/two', false, forced)).body).toBe('ok');
      expect(connections).toBe(2);
      expect(requestsSeen).toEqual(['GET /one', 'GET /two', 'GET /two']);
      const { text } = await raw(proxy.port, ['POST /pay HTTP/1.1\r\nHost: a\r\nx-slipway-track: canary\r\ncontent-length: 1\r\n\r\n1'], countResponses(1));
      expect(responses(text)[0]!.status).toBe(502);
      expect(requestsSeen.filter((r) => r === 'POST /pay')).toHaveLength(1);
      proxy.setUpstreams('canary', [canary]);
    });
  });

  describe('when a client hangs up before its answer', () => {
    it('records 499 on the track, not a service error', async () => {
      const since = new Date();
      const socket = connect(proxy.port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write('GET /slow?delay=300 HTTP/1.1\r\nHost: a\r\n\r\n');
      await new Promise((r) => setTimeout(r, 50));
      socket.destroy();
      expect(await samplesEventually(log, 'stable', since, 1)).toEqual([499]);
    });
  });

  describe('requests the fast path does not take', () => {
    it('hands an Expect: 100-continue request to the general path, which still forwards it', async () => {
      const reply = await within(
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port: proxy.port, method: 'PUT', path: '/expect', agent: false, headers: { expect: '100-continue', 'content-length': 4 } });
          req.on('continue', () => req.end('data'));
          req.on('response', (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }));
          });
          req.on('error', reject);
        }),
        15_000,
        'the Expect: 100-continue request',
      );
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.body)).toMatchObject({ method: 'PUT', path: '/expect', body: 'data' });
    });

    it('hands over a chunked upload after fast-path requests on the same connection, in order', async () => {
      const since = new Date();
      const { text } = await raw(
        proxy.port,
        [
          'GET /before HTTP/1.1\r\nHost: a\r\n\r\n',
          'POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n',
          '3\r\nefg\r\n0\r\n\r\n',
          'GET /after-upload HTTP/1.1\r\nHost: a\r\n\r\n',
        ],
        countResponses(3),
      );
      const answers = responses(text).map((r) => JSON.parse(r.body) as { path: string; body: string });
      expect(answers.map((a) => a.path)).toEqual(['/before', '/upload', '/after-upload']);
      expect(answers[1]!.body).toBe('abcdefg');
      expect(await samplesEventually(log, 'stable', since, 3)).toEqual([200, 200, 200]);
    });

    it('hands an Upgrade to the general path, which joins the connection to the instance', async () => {
      const { text } = await raw(proxy.port, ['GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n', 'ping'], (t) => t.includes('echo:ping'));
      expect(text).toMatch(/^HTTP\/1\.1 101 /);
      expect(text).toContain('x-slipway-track: stable');
      expect(text).toContain('echo:ping');
      // Bytes that came in the same read as the head are handed over too.
      const { text: together } = await raw(proxy.port, ['GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nsame-read'], (t) => t.includes('echo:same-read'));
      expect(together).toMatch(/^HTTP\/1\.1 101 /);
    });

    it('refuses a request with both Content-Length and Transfer-Encoding with 400 (a smuggling shape)', async () => {
      const before = seenHeaders.length;
      const { text } = await raw(proxy.port, ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n']);
      expect(text).toMatch(/^HTTP\/1\.1 400 /);
      expect(seenHeaders.length).toBe(before);
    });

    it('refuses two different Content-Length headers with 400', async () => {
      const { text } = await raw(proxy.port, ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde']);
      expect(text).toMatch(/^HTTP\/1\.1 400 /);
    });

    it('answers a head over 16 KiB with 431 and HTTP/1.0 through the general path', async () => {
      const { text: big } = await raw(proxy.port, [`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`]);
      expect(big).toMatch(/^HTTP\/1\.1 431 /);
      const { text: old } = await raw(proxy.port, ['GET /old HTTP/1.0\r\nHost: a\r\n\r\n']);
      expect(old).toMatch(/^HTTP\/1\.1 200 /);
      expect(old).toContain('"path":"/old"');
    });
  });

  describe('when the canary weight drops to 0 under load', () => {
    it('routes no request sent after setWeight(0) to the canary', async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 16 });
      proxy.setWeight(50);
      let switchedAt = Infinity;
      let stop = false;
      let canaryBefore = 0;
      let canaryAfter = 0;
      let after = 0;
      const worker = async () => {
        while (!stop) {
          const sentAt = performance.now();
          const reply = await get(proxy.port, '/', agent);
          const isCanary = reply.headers['x-slipway-track'] === 'canary';
          if (sentAt >= switchedAt) {
            after++;
            if (isCanary) canaryAfter++;
          } else if (isCanary) {
            canaryBefore++;
          }
        }
      };
      const workers = Array.from({ length: 16 }, worker);
      while (canaryBefore < 50) await new Promise((r) => setTimeout(r, 5));
      proxy.setWeight(0);
      switchedAt = performance.now();
      while (after < 500) await new Promise((r) => setTimeout(r, 5));
      stop = true;
      await within(Promise.all(workers), 15_000, 'the load workers to stop');
      agent.destroy();
      expect(canaryBefore).toBeGreaterThan(0);
      expect(canaryAfter).toBe(0);
    });
  });
});

describe('the chunked body scanner', () => {
  it('finds the end of a body split anywhere, extensions and trailers included', () => {
    const body = Buffer.from('4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT');
    for (let cut = 1; cut < body.length - 4; cut++) {
      const scanner = new ChunkedScanner();
      const first = scanner.scan(body, 0, cut);
      const end = first >= 0 ? first : scanner.scan(body, cut, body.length);
      expect(end).toBe(body.length - 4);
    }
  });

  it('says when the framing is broken', () => {
    expect(new ChunkedScanner().scan(Buffer.from('zz\r\n'), 0, 4)).toBe(-2);
    expect(new ChunkedScanner().scan(Buffer.from('2\r\nabX\r\n'), 0, 8)).toBe(-2);
  });
});
