import { STATUS_CODES, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { SlipwayError } from '../../lib/errors.js';
import type { Track } from '../targets/types.js';
import type { ProxyMetrics, RequestRecorder } from './metrics.js';
import type { ProxyRequestLog } from './request-log.js';
import { TrackSplitter } from './weighted.js';
import { CLIENT_CLOSED, FastPath, TRACK_HEADER, type FastPathOwner, type Upstream, type UpstreamHost } from './fast-path.js';

export { CLIENT_CLOSED, TRACK_HEADER, type Upstream };

export interface RouteTable {
  stable: Upstream[];
  canary: Upstream[];
  canaryWeight: number;
}

export interface ServiceProxyOptions {
  environment: string;
  service: string;
  /** Fixed port; a free one when absent. */
  port?: number;
  host?: string;
  metrics: ProxyMetrics;
  requestLog: ProxyRequestLog;
  /** Timestamp source for the request log (milliseconds since the epoch). */
  now?: () => number;
  /** An upstream that sends no response headers within this long gets a 504. Default 60 s. */
  upstreamTimeoutMs?: number;
  /** Told when an upstream refuses or resets a connection, so its owner can re-check it at once. */
  onUpstreamError?: (upstream: Upstream, error: Error) => void;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
]);

class TrackPool {
  private next = 0;
  /** `http://host:port` of each upstream, made once per route change rather than once per request. */
  private readonly origins: string[];
  constructor(
    readonly upstreams: readonly Upstream[],
    /** The fast path's keep-alive pool of each upstream, same order. */
    readonly hosts: readonly UpstreamHost[],
  ) {
    this.origins = upstreams.map((u) => `http://${u.host.includes(':') ? `[${u.host}]` : u.host}:${u.port}`);
  }
  /** Round robin; the index also names the upstream's origin. */
  pick(): number {
    const n = this.upstreams.length;
    if (n === 0) return -1;
    const index = this.next % n;
    this.next = (index + 1) % n;
    return index;
  }
  origin(index: number): string {
    return this.origins[index]!;
  }
}

/**
 * The reverse proxy in front of one (environment, service): splits traffic between the stable and the canary
 * track by weight, round-robins over each track's healthy instances, streams bodies both ways.
 * Route changes are synchronous field swaps: a request already routed finishes where it went, the next one
 * sees the new table. Routing is per request, at the moment its head is read.
 *
 * Two paths share the routing, the metrics and the request log. Connections arrive on a raw `net` server: plain
 * HTTP/1.1 requests take the fast path (./fast-path.ts: raw sockets both ways, keep-alive pools per instance);
 * a connection that sends anything else (Upgrade, Expect, a chunked upload, HTTP/1.0, a head the fast path does
 * not recognise) is handed to a node:http server, the general path below, for the rest of its life.
 */
export class ServiceProxy implements FastPathOwner {
  readonly environment: string;
  readonly service: string;
  /** The listening socket: every connection starts on the fast path. */
  private readonly server: NetServer;
  /** The general path: never listens, takes the connections the fast path hands over. */
  private readonly httpServer: Server;
  private readonly fast: FastPath;
  /** undici's client: far less CPU per request than node:http's, with keep-alive pools per instance. */
  private readonly dispatcher: Agent;
  private readonly splitter = new TrackSplitter();
  private pools: Record<Track, TrackPool> = { stable: new TrackPool([], []), canary: new TrackPool([], []) };
  private readonly recorder: RequestRecorder;
  private readonly logSample: (track: Track, at: number, status: number, latencyMs: number) => void;
  private readonly sockets = new Set<Socket>();
  private readonly now: () => number;
  private readonly upstreamTimeoutMs: number;
  private boundPort = 0;
  private readonly host: string;
  private readonly inflight = new Map<string, number>();
  private readonly drainWaiters = new Set<() => void>();

  private constructor(private readonly options: ServiceProxyOptions) {
    this.environment = options.environment;
    this.service = options.service;
    this.host = options.host ?? '127.0.0.1';
    this.now = options.now ?? Date.now;
    this.upstreamTimeoutMs = options.upstreamTimeoutMs ?? 60_000;
    this.recorder = options.metrics.recorder(options.environment, options.service);
    this.logSample = options.requestLog.writer({ environment: options.environment, service: options.service });
    this.dispatcher = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, connect: { noDelay: true } });
    this.fast = new FastPath(this);
    this.httpServer = createServer((req, res) => this.handle(req, res));
    this.httpServer.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.handleUpgrade(req, socket, head));
    this.httpServer.keepAliveTimeout = 30_000;
    // node:http starts its connection bookkeeping (idle list, header and request timeouts) on 'listening'; this
    // server never listens, so that is started here.
    this.httpServer.emit('listening');
    this.server = createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      this.fast.accept(socket);
    });
    options.metrics.setWeight(this.environment, this.service, 0);
  }

  static async start(options: ServiceProxyOptions): Promise<ServiceProxy> {
    const proxy = new ServiceProxy(options);
    await proxy.listen(options.port ?? 0);
    return proxy;
  }

  get port(): number {
    return this.boundPort;
  }

  get endpoint(): string {
    return `http://${this.host}:${this.boundPort}`;
  }

  get canaryWeight(): number {
    return this.splitter.weight;
  }

  /** Takes effect for the very next request. */
  setWeight(canaryWeight: number): void {
    this.splitter.setWeight(canaryWeight);
    this.options.metrics.setWeight(this.environment, this.service, canaryWeight);
  }

  setUpstreams(track: Track, upstreams: readonly Upstream[]): void {
    this.pools = { ...this.pools, [track]: this.trackPool(upstreams) };
    this.retireUnrouted();
    this.options.metrics.setHealthy(this.environment, this.service, track, upstreams.length);
  }

  /** Replaces the whole table at once (promotion: the canary's instances become stable and the weight 0). */
  setRoutes(routes: RouteTable): void {
    this.pools = { stable: this.trackPool(routes.stable), canary: this.trackPool(routes.canary) };
    this.retireUnrouted();
    this.setWeight(routes.canaryWeight);
    this.options.metrics.setHealthy(this.environment, this.service, 'stable', routes.stable.length);
    this.options.metrics.setHealthy(this.environment, this.service, 'canary', routes.canary.length);
  }

  private trackPool(upstreams: readonly Upstream[]): TrackPool {
    return new TrackPool([...upstreams], upstreams.map((u) => this.fast.host(u)));
  }

  /** Instances out of the routes lose their idle keep-alive sockets (busy ones close when their answer is done). */
  private retireUnrouted(): void {
    this.fast.retireExcept(new Set([...this.pools.stable.hosts, ...this.pools.canary.hosts]));
  }

  /** @internal The fast path's pick: round robin over the track's instances. */
  pickHost(track: Track): UpstreamHost | undefined {
    const pool = this.pools[track];
    const index = pool.pick();
    return index < 0 ? undefined : pool.hosts[index];
  }

  /** @internal Gives a connection (its unread bytes put back) to the general path for the rest of its life. */
  handOver(socket: Socket): void {
    this.httpServer.emit('connection', socket);
  }

  /** @internal */
  clock(): number {
    return this.now();
  }

  routes(): RouteTable {
    return {
      stable: [...this.pools.stable.upstreams],
      canary: [...this.pools.canary.upstreams],
      canaryWeight: this.splitter.weight,
    };
  }

  /**
   * Stops listening at once. With `graceMs`, requests under way get that long to finish (idle keep-alive
   * connections close now); whatever is left after it is cut.
   */
  async close(graceMs = 0): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (graceMs > 0) {
      this.httpServer.closeIdleConnections();
      this.fast.closeIdleClients();
      await this.drain([...this.inflight.keys()], graceMs);
    }
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.fast.destroy();
    this.httpServer.close();
    await this.dispatcher.destroy().catch(() => undefined);
  }

  private async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(
          new SlipwayError(
            err.code === 'EADDRINUSE' ? 'PROXY_PORT_IN_USE' : 'PROXY_LISTEN_FAILED',
            err.code === 'EADDRINUSE'
              ? `proxy for ${this.environment}/${this.service} cannot listen on ${this.host}:${port}: the port is in use; free it or change spec.proxyPort`
              : `proxy for ${this.environment}/${this.service} cannot listen on ${this.host}:${port}: ${err.message}`,
            'waiting',
            { environment: this.environment, service: this.service, port },
          ),
        );
      };
      this.server.once('error', onError);
      this.server.listen(port, this.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    const address = this.server.address();
    this.boundPort = typeof address === 'object' && address ? address.port : port;
  }

  /** @internal Called by the exchange listeners below. */
  recordSample(track: Track, status: number, latencyMs: number, at: number): void {
    this.recorder.observe(track, status, latencyMs / 1000);
    this.logSample(track, at, status, latencyMs);
  }

  /**
   * The hot path. Everything one request needs lives in one Exchange; the listeners are shared module functions
   * that find it on the emitter, so a request allocates no closures and registers as few listeners as it can.
   */
  private handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const at = this.now();
    const request = scanRequest(req);
    let track: Track;
    let forced = false;
    if (request.forcedTrack !== undefined) {
      if (request.forcedTrack !== 'canary' && request.forcedTrack !== 'stable') {
        this.reply(res, 400, `header ${TRACK_HEADER} must be "stable" or "canary", got ${JSON.stringify(request.forcedTrack)}\n`);
        return;
      }
      track = request.forcedTrack;
      forced = true;
    } else {
      track = this.weightedTrack();
    }
    const pool = this.pools[track];
    const index = pool.pick();
    const upstream = index < 0 ? undefined : pool.upstreams[index];
    const exchange = new Exchange(this, req, res, track, upstream, index < 0 ? '' : pool.origin(index), started, at);
    (res as ExchangeCarrier)[EXCHANGE] = exchange;
    res.once('finish', onClientFinish);
    res.once('close', onClientClose);
    if (!upstream) {
      res.setHeader(TRACK_HEADER, track);
      this.reply(
        res,
        503,
        `no healthy instance of the ${track} track of ${this.environment}/${this.service}` + (track === 'canary' && !forced ? ` (canary weight is ${this.splitter.weight})` : '') + '\n',
      );
      return;
    }
    this.begin(upstream.id);
    exchange.headers = request.headers;
    exchange.hasBody = request.hasBody;
    this.forward(exchange);
  }

  /** @internal Sends (or re-sends, once, after a stale keep-alive socket) the request of an exchange upstream. */
  forward(exchange: Exchange): void {
    const req = exchange.req;
    let body: PassThrough | null = null;
    // A request without a body (most GETs) is sent at once; a body is streamed through (a PassThrough, so a failing
    // instance never destroys the client's own request stream).
    if (exchange.hasBody && !exchange.retried) body = req.pipe(new PassThrough());
    this.dispatcher.dispatch(
      {
        origin: exchange.origin,
        path: req.url ?? '/',
        method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
        headers: exchange.headers,
        body,
        headersTimeout: this.upstreamTimeoutMs,
        bodyTimeout: this.upstreamTimeoutMs,
      },
      exchange,
    );
  }

  /** @internal The weighted pick; a canary with no healthy instance sends its share to stable (users never pay for it). */
  weightedTrack(): Track {
    const track = this.splitter.next();
    if (track === 'canary' && this.pools.canary.upstreams.length === 0 && this.pools.stable.upstreams.length > 0) return 'stable';
    return track;
  }

  /** @internal */
  get timeoutMs(): number {
    return this.upstreamTimeoutMs;
  }

  /** @internal */
  upstreamFailed(upstream: Upstream, err: Error): void {
    this.options.onUpstreamError?.(upstream, err);
  }

  /** @internal */
  begin(upstreamId: string): void {
    this.inflight.set(upstreamId, (this.inflight.get(upstreamId) ?? 0) + 1);
  }

  /** @internal */
  end(upstreamId: string): void {
    const left = (this.inflight.get(upstreamId) ?? 1) - 1;
    if (left > 0) {
      this.inflight.set(upstreamId, left);
      return;
    }
    this.inflight.delete(upstreamId);
    for (const waiter of [...this.drainWaiters]) waiter();
  }

  /** Requests under way on an instance (an upgraded connection counts until its handshake is answered). */
  inFlight(upstreamId: string): number {
    return this.inflight.get(upstreamId) ?? 0;
  }

  /**
   * Resolves once no request is under way on any of `upstreamIds` (take them out of the routes first), or after
   * `timeoutMs`; tells which. Stopping an instance only after this spares the requests it is still answering.
   */
  drain(upstreamIds: readonly string[], timeoutMs: number): Promise<boolean> {
    const busy = () => upstreamIds.some((id) => this.inflight.has(id));
    if (!busy()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const finish = (drained: boolean) => {
        this.drainWaiters.delete(check);
        clearTimeout(timer);
        resolve(drained);
      };
      const check = () => {
        if (!busy()) finish(true);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      timer.unref();
      this.drainWaiters.add(check);
    });
  }

  /**
   * Connection upgrades (WebSocket and the like) are routed like requests, then the two sockets are joined. The
   * handshake is recorded (status 101 or the refusal); what flows afterwards is the application's business.
   */
  private handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const started = performance.now();
    const at = this.now();
    socket.on('error', () => socket.destroy());
    const request = scanRequest(req);
    const forced = request.forcedTrack;
    if (forced !== undefined && forced !== 'canary' && forced !== 'stable') {
      rawReply(socket, 400, `header ${TRACK_HEADER} must be "stable" or "canary", got ${JSON.stringify(forced)}\n`);
      return;
    }
    const track: Track = forced ?? this.weightedTrack();
    const pool = this.pools[track];
    const upstream = pool.upstreams[pool.pick()];
    let handshakeDone = () => undefined as void;
    const done = (status: number) => {
      handshakeDone();
      this.recordSample(track, status, performance.now() - started, at);
    };
    if (!upstream) {
      rawReply(socket, 503, `no healthy instance of the ${track} track of ${this.environment}/${this.service}\n`);
      done(503);
      return;
    }
    this.begin(upstream.id);
    let answered = false;
    handshakeDone = () => {
      if (answered) return;
      answered = true;
      this.end(upstream.id);
    };
    socket.once('close', handshakeDone);
    const headers = request.headers;
    headers.push('connection', req.headers.connection ?? 'upgrade');
    if (req.headers.upgrade) headers.push('upgrade', req.headers.upgrade);
    const upstreamReq = httpRequest({ host: upstream.host, port: upstream.port, method: req.method, path: req.url, headers, agent: false });
    upstreamReq.setTimeout(this.upstreamTimeoutMs, () => upstreamReq.destroy(new UpstreamTimeout(this.upstreamTimeoutMs)));
    upstreamReq.on('upgrade', (upstreamRes: IncomingMessage, upstreamSocket: Socket, upstreamHead: Buffer) => {
      upstreamReq.setTimeout(0);
      const lines = [`HTTP/1.1 101 ${upstreamRes.statusMessage || 'Switching Protocols'}`];
      for (let i = 0; i < upstreamRes.rawHeaders.length; i += 2) lines.push(`${upstreamRes.rawHeaders[i]}: ${upstreamRes.rawHeaders[i + 1]}`);
      lines.push(`${TRACK_HEADER}: ${track}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      upstreamSocket.on('error', () => socket.destroy());
      socket.on('close', () => upstreamSocket.destroy());
      upstreamSocket.on('close', () => socket.destroy());
      upstreamSocket.pipe(socket);
      socket.pipe(upstreamSocket);
      done(101);
    });
    upstreamReq.on('response', (upstreamRes: IncomingMessage) => {
      // The instance declined the upgrade: pass its answer on and close.
      const chunks: Buffer[] = [];
      upstreamRes.on('data', (c: Buffer) => chunks.push(c));
      upstreamRes.on('end', () => {
        const status = upstreamRes.statusCode ?? 502;
        rawReply(socket, status, Buffer.concat(chunks).toString('utf8'), upstreamRes.headers['content-type']);
        done(status);
      });
    });
    upstreamReq.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET') this.options.onUpstreamError?.(upstream, err);
      const status = err instanceof UpstreamTimeout ? 504 : 502;
      rawReply(socket, status, `instance ${upstream.id} failed the upgrade: ${err.code ?? err.message}\n`);
      done(status);
    });
    if (head.length > 0) upstreamReq.write(head);
    upstreamReq.end();
  }

  /** @internal */
  reply(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}

function rawReply(socket: Socket, status: number, body: string, contentType: string | string[] = 'text/plain; charset=utf-8'): void {
  if (socket.destroyed) return;
  const length = Buffer.byteLength(body);
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: ${String(contentType)}\r\ncontent-length: ${length}\r\nconnection: close\r\n\r\n${body}`);
}

class UpstreamTimeout extends Error {
  constructor(readonly ms: number) {
    super(`no response within ${ms} ms`);
  }
}

const EXCHANGE = Symbol('slipway.proxy.exchange');
type ExchangeCarrier = { [EXCHANGE]?: Exchange };
const exchangeOf = (emitter: unknown): Exchange => (emitter as ExchangeCarrier)[EXCHANGE]!;

/**
 * One proxied request: the state its listeners share, kept in one object instead of closures. It is also the
 * undici dispatch handler of the upstream request.
 */
class Exchange implements Dispatcher.DispatchHandler {
  headers: string[] = [];
  hasBody = false;
  controller: Dispatcher.DispatchController | undefined = undefined;
  responded = false;
  /** The instance failed mid-body (a 502), as opposed to the client going away (a 499). */
  broken = false;
  recorded = false;
  /** Sent a second time after the instance closed a reused keep-alive socket. */
  retried = false;
  constructor(
    readonly proxy: ServiceProxy,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly track: Track,
    readonly upstream: Upstream | undefined,
    readonly origin: string,
    readonly started: number,
    readonly at: number,
  ) {}

  record(): void {
    if (this.recorded) return;
    this.recorded = true;
    const res = this.res;
    // A response cut short counts as 502 when the instance broke it, 499 (not an error) when the client left.
    const status = res.writableFinished ? res.statusCode : this.broken ? 502 : CLIENT_CLOSED;
    this.proxy.recordSample(this.track, status, performance.now() - this.started, this.at);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.res.destroyed) controller.abort(new ClientGone());
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (statusCode < 200) return; // 1xx interim answers stay between the instance and the proxy
    const res = this.res;
    if (res.destroyed) {
      controller.abort(new ClientGone());
      return;
    }
    this.responded = true;
    res.writeHead(statusCode, statusMessage ?? '', responseHeaders(headers, this.track));
  }

  /** Streams the body through with backpressure: a slow client pauses the instance's response. */
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', onClientDrain);
    }
  }

  onResponseEnd(): void {
    this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const { proxy, req, res, upstream, track } = this;
    if (err instanceof ClientGone) return;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const reset = code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE';
    // A keep-alive socket the instance closed just as it was reused: safe to send again a request without a body.
    const idempotent = req.method === 'GET' || req.method === 'HEAD';
    if (!this.retried && !this.responded && !this.hasBody && idempotent && reset && !res.destroyed) {
      this.retried = true;
      this.controller = undefined;
      proxy.forward(this);
      return;
    }
    if (code === 'ECONNREFUSED' || reset) proxy.upstreamFailed(upstream!, err);
    if (res.headersSent) {
      if (!res.writableFinished) {
        this.broken = true;
        res.destroy(err);
      }
      return;
    }
    if (res.destroyed) return;
    res.setHeader(TRACK_HEADER, track);
    if (code === 'UND_ERR_HEADERS_TIMEOUT') proxy.reply(res, 504, `instance ${upstream!.id} sent no response within ${proxy.timeoutMs} ms\n`);
    else proxy.reply(res, 502, `instance ${upstream!.id} (${upstream!.host}:${upstream!.port}) failed: ${code || err.message}\n`);
  }
}

/** The reason an upstream request is aborted when its client went away first. */
class ClientGone extends Error {
  constructor() {
    super('the client closed the connection');
  }
}

function onClientFinish(this: ServerResponse): void {
  exchangeOf(this).record();
}

function onClientClose(this: ServerResponse): void {
  const exchange = exchangeOf(this);
  exchange.record();
  if (exchange.upstream) exchange.proxy.end(exchange.upstream.id);
  if (!this.writableFinished) exchange.controller?.abort(new ClientGone());
}

function onClientDrain(this: ServerResponse): void {
  exchangeOf(this).controller?.resume();
}

/** What `handle` needs from a request, read in one pass over its raw headers (the parsed object is never built). */
interface ScannedRequest {
  /** Headers for the instance, as a flat [name, value, ...] list: hop-by-hop ones and the track header removed. */
  headers: string[];
  forcedTrack: string | undefined;
  hasBody: boolean;
}

function scanRequest(req: IncomingMessage): ScannedRequest {
  const raw = req.rawHeaders;
  let forcedTrack: string | undefined;
  let hasBody = false;
  let host: string | undefined;
  let forwardedFor: string | undefined;
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === 'connection') listed = connectionTokens(raw[i + 1]!, listed);
    else if (name === 'content-length') hasBody ||= raw[i + 1] !== '0';
    else if (name === 'transfer-encoding') hasBody = true;
  }
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const rawName = raw[i]!;
    const name = rawName.toLowerCase();
    const value = raw[i + 1]!;
    if (name === TRACK_HEADER) {
      forcedTrack ??= value;
      continue;
    }
    // The client's framing (Transfer-Encoding, Expect) is not the instance's: the body is re-framed upstream.
    if (HOP_BY_HOP.has(name) || listed?.has(name) || name === 'transfer-encoding' || name === 'expect') continue;
    if (name === 'x-forwarded-for') {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
      continue;
    }
    if (name === 'x-forwarded-host' || name === 'x-forwarded-proto') continue;
    if (name === 'host') host = value;
    headers.push(rawName, value);
  }
  const client = req.socket.remoteAddress ?? '';
  headers.push('x-forwarded-for', forwardedFor === undefined ? client : `${forwardedFor}, ${client}`);
  if (host !== undefined) headers.push('x-forwarded-host', host);
  headers.push('x-forwarded-proto', 'http');
  return { headers, forcedTrack, hasBody };
}

/**
 * The instance's response headers for the client: its hop-by-hop headers stay between it and the proxy. The body
 * arrives de-chunked, so Transfer-Encoding is the client connection's business too (Node chunks when it must).
 */
function responseHeaders(headers: IncomingHttpHeaders, track: Track): OutgoingHttpHeaders {
  const connection = headers.connection;
  const listed = connection ? connectionTokens(connection, undefined) : undefined;
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || name === 'transfer-encoding' || name === TRACK_HEADER || listed?.has(name)) continue;
    out[name] = headers[name];
  }
  out[TRACK_HEADER] = track;
  return out;
}

/** Header names a Connection header lists (besides the usual keep-alive/close), which are hop-by-hop too. */
function connectionTokens(value: string, into: Set<string> | undefined): Set<string> | undefined {
  let set = into;
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || name === 'keep-alive' || name === 'close') continue;
    (set ??= new Set()).add(name);
  }
  return set;
}
