import {
  Agent,
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

  private constructor(private readonly options: ServiceProxyOptions) {
    this.environment = options.environment;
    this.service = options.service;
    this.host = options.host ?? '127.0.0.1';
    this.now = options.now ?? Date.now;
    this.upstreamTimeoutMs = options.upstreamTimeoutMs ?? 60_000;
    this.recorder = options.metrics.recorder(options.environment, options.service);
    this.agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024, scheduling: 'lifo' });
    this.server = createServer((req, res) => this.handle(req, res));
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

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
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

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const at = this.now();
    const forced = req.headers[TRACK_HEADER];
    let track: Track;
    if (forced === undefined) {
      track = this.splitter.next();
    } else if (forced === 'canary' || forced === 'stable') {
      track = forced;
    } else {
      this.reply(res, 400, `header ${TRACK_HEADER} must be "stable" or "canary", got ${JSON.stringify(forced)}\n`);
      return;
    }

    // A weighted pick of a canary with no healthy instance (crashed, restarting) goes to stable: users never pay
    // for a canary that is down, and the track's readiness already tells the rollout. A forced track does not.
    if (track === 'canary' && forced === undefined && this.pools.canary.upstreams.length === 0 && this.pools.stable.upstreams.length > 0) {
      track = 'stable';
    }

    let recorded = false;
    const record = () => {
      if (recorded) return;
      recorded = true;
      const latencyMs = performance.now() - started;
      const status = res.headersSent ? res.statusCode : 502;
      this.recorder.observe(track, status, latencyMs / 1000);
      this.options.requestLog.record(this, track, { at, status, latencyMs });
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
    this.forward(req, res, track, upstream, true);
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
      upstreamRes.on('error', () => res.destroy());
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

  private reply(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
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
