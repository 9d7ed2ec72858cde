import {
  Agent,
  STATUS_CODES,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { SlipwayError } from '../../lib/errors.js';
import type { Track } from '../targets/types.js';
import type { ProxyMetrics, RequestRecorder } from './metrics.js';
import type { ProxyRequestLog } from './request-log.js';
import { TrackSplitter } from './weighted.js';

export const TRACK_HEADER = 'x-slipway-track';
/** Recorded when the client went away before the answer was complete (nginx's 499); not a service error. */
export const CLIENT_CLOSED = 499;

/** One instance that can take traffic. */
export interface Upstream {
  /** Stable name for logs and errors, e.g. `staging/web/canary#2`. */
  id: string;
  host: string;
  port: number;
}

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
  constructor(readonly upstreams: readonly Upstream[]) {}
  pick(): Upstream | undefined {
    const n = this.upstreams.length;
    if (n === 0) return undefined;
    const upstream = this.upstreams[this.next % n];
    this.next = (this.next + 1) % n;
    return upstream;
  }
}

/**
 * The reverse proxy in front of one (environment, service): splits traffic between the stable and the canary
 * track by weight, round-robins over each track's healthy instances, streams bodies both ways.
 * Route changes are synchronous field swaps: a request already routed finishes where it went, the next one
 * sees the new table.
 */
export class ServiceProxy {
  readonly environment: string;
  readonly service: string;
  private readonly server: Server;
  private readonly agent: Agent;
  private readonly splitter = new TrackSplitter();
  private pools: Record<Track, TrackPool> = { stable: new TrackPool([]), canary: new TrackPool([]) };
  private readonly recorder: RequestRecorder;
  private readonly sockets = new Set<Socket>();
  private readonly now: () => number;
  private readonly upstreamTimeoutMs: number;
  private boundPort = 0;
  private readonly host: string;
  private readonly inflight = new Map<string, number>();
  private readonly drainWaiters = new Set<() => void>();
  /** Responses whose instance failed mid-body (to tell them from responses the client abandoned). */
  private readonly brokenUpstream = new WeakSet<ServerResponse>();

  private constructor(private readonly options: ServiceProxyOptions) {
    this.environment = options.environment;
    this.service = options.service;
    this.host = options.host ?? '127.0.0.1';
    this.now = options.now ?? Date.now;
    this.upstreamTimeoutMs = options.upstreamTimeoutMs ?? 60_000;
    this.recorder = options.metrics.recorder(options.environment, options.service);
    this.agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024, scheduling: 'lifo' });
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.handleUpgrade(req, socket, head));
    this.server.keepAliveTimeout = 30_000;
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
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
    this.pools = { ...this.pools, [track]: new TrackPool([...upstreams]) };
    this.options.metrics.setHealthy(this.environment, this.service, track, upstreams.length);
  }

  /** Replaces the whole table at once (promotion: the canary's instances become stable and the weight 0). */
  setRoutes(routes: RouteTable): void {
    this.pools = { stable: new TrackPool([...routes.stable]), canary: new TrackPool([...routes.canary]) };
    this.setWeight(routes.canaryWeight);
    this.options.metrics.setHealthy(this.environment, this.service, 'stable', routes.stable.length);
    this.options.metrics.setHealthy(this.environment, this.service, 'canary', routes.canary.length);
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
      this.server.closeIdleConnections();
      await this.drain([...this.inflight.keys()], graceMs);
    }
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.agent.destroy();
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

  /** The track a request goes to, or an error message for a bad track header. */
  private chooseTrack(req: IncomingMessage): { track: Track; forced: boolean } | { error: string } {
    const forced = req.headers[TRACK_HEADER];
    if (forced !== undefined) {
      if (forced === 'canary' || forced === 'stable') return { track: forced, forced: true };
      return { error: `header ${TRACK_HEADER} must be "stable" or "canary", got ${JSON.stringify(forced)}\n` };
    }
    const track = this.splitter.next();
    // A weighted pick of a canary with no healthy instance (crashed, restarting) goes to stable: users never pay
    // for a canary that is down, and the track's readiness already tells the rollout. A forced track does not.
    if (track === 'canary' && this.pools.canary.upstreams.length === 0 && this.pools.stable.upstreams.length > 0) {
      return { track: 'stable', forced: false };
    }
    return { track, forced: false };
  }

  private recordSample(track: Track, status: number, latencyMs: number, at: number): void {
    this.recorder.observe(track, status, latencyMs / 1000);
    this.options.requestLog.record(this, track, { at, status, latencyMs });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const at = this.now();
    const choice = this.chooseTrack(req);
    if ('error' in choice) {
      this.reply(res, 400, choice.error);
      return;
    }
    const { track } = choice;
    const forced = choice.forced ? track : undefined;

    let recorded = false;
    const record = () => {
      if (recorded) return;
      recorded = true;
      const latencyMs = performance.now() - started;
      // A response cut short counts as 502 when the instance broke it, 499 (not an error) when the client left.
      const status = res.writableFinished ? res.statusCode : this.brokenUpstream.has(res) ? 502 : CLIENT_CLOSED;
      this.recordSample(track, status, latencyMs, at);
    };
    res.once('finish', record);
    res.once('close', record);

    const upstream = this.pools[track].pick();
    if (!upstream) {
      res.setHeader(TRACK_HEADER, track);
      this.reply(
        res,
        503,
        `no healthy instance of the ${track} track of ${this.environment}/${this.service}` +
          (track === 'canary' && forced === undefined ? ` (canary weight is ${this.splitter.weight})` : '') +
          '\n',
      );
      return;
    }
    this.begin(upstream.id);
    res.once('close', () => this.end(upstream.id));
    this.forward(req, res, track, upstream, true);
  }

  private begin(upstreamId: string): void {
    this.inflight.set(upstreamId, (this.inflight.get(upstreamId) ?? 0) + 1);
  }

  private end(upstreamId: string): void {
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

  private forward(req: IncomingMessage, res: ServerResponse, track: Track, upstream: Upstream, mayRetry: boolean): void {
    const headers = requestHeaders(req);
    const upstreamReq = httpRequest({
      host: upstream.host,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers,
      agent: this.agent,
    });
    upstreamReq.setTimeout(this.upstreamTimeoutMs, () => {
      upstreamReq.destroy(new UpstreamTimeout(this.upstreamTimeoutMs));
    });

    upstreamReq.on('response', (upstreamRes) => {
      const out: OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(upstreamRes.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      }
      out[TRACK_HEADER] = track;
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, out);
      upstreamRes.pipe(res);
      const broken = () => {
        this.brokenUpstream.add(res);
        res.destroy();
      };
      upstreamRes.on('error', broken);
      upstreamRes.on('aborted', broken);
    });

    upstreamReq.on('error', (err: NodeJS.ErrnoException) => {
      // A keep-alive socket the instance closed just as we reused it: safe to retry a request without a body.
      const idempotent = req.method === 'GET' || req.method === 'HEAD';
      if (mayRetry && idempotent && upstreamReq.reusedSocket && err.code === 'ECONNRESET' && !res.headersSent) {
        this.forward(req, res, track, upstream, false);
        return;
      }
      if (err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET') this.options.onUpstreamError?.(upstream, err);
      if (res.headersSent) {
        this.brokenUpstream.add(res);
        res.destroy(err);
        return;
      }
      res.setHeader(TRACK_HEADER, track);
      if (err instanceof UpstreamTimeout) {
        this.reply(res, 504, `instance ${upstream.id} sent no response within ${err.ms} ms\n`);
      } else {
        this.reply(res, 502, `instance ${upstream.id} (${upstream.host}:${upstream.port}) failed: ${err.code ?? err.message}\n`);
      }
    });

    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    if (mayRetry) req.pipe(upstreamReq);
    else upstreamReq.end();
  }

  /**
   * Connection upgrades (WebSocket and the like) are routed like requests, then the two sockets are joined. The
   * handshake is recorded (status 101 or the refusal); what flows afterwards is the application's business.
   */
  private handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const started = performance.now();
    const at = this.now();
    socket.on('error', () => socket.destroy());
    const choice = this.chooseTrack(req);
    if ('error' in choice) {
      rawReply(socket, 400, choice.error);
      return;
    }
    const { track } = choice;
    const upstream = this.pools[track].pick();
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
    const headers = requestHeaders(req);
    headers.connection = req.headers.connection ?? 'upgrade';
    if (req.headers.upgrade) headers.upgrade = req.headers.upgrade;
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

  private reply(res: ServerResponse, status: number, body: string): void {
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

function requestHeaders(req: IncomingMessage): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  const listed = connectionListed(req.headers);
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name) || name === TRACK_HEADER) continue;
    headers[name] = value;
  }
  const client = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${client}` : client;
  if (req.headers.host) headers['x-forwarded-host'] = req.headers.host;
  headers['x-forwarded-proto'] = 'http';
  return headers;
}

function connectionListed(headers: IncomingHttpHeaders): Set<string> {
  const value = headers.connection;
  if (!value) return new Set();
  return new Set(value.split(',').map((token) => token.trim().toLowerCase()));
}
