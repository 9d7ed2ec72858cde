import { STATUS_CODES } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Track } from '../targets/types.js';
import { DeadlineList, type Timed } from './deadlines.js';
import { ChunkedScanner, CRLF2, Framing, MAX_HEAD_BYTES, parseRequestHead, parseResponseHead, type RequestHead, type ResponseHead } from './http1.js';

/**
 * The proxy's fast path: plain HTTP/1.1 requests (no body or a Content-Length body) on raw sockets, routed one by
 * one, forwarded over keep-alive pools of raw sockets to the instances, answers streamed back as they come. It
 * does per request what the answer needs and no more: a head is parsed once (one that repeats the last byte for
 * byte is only compared), one write each way, no stream objects per request. Anything else on a connection (Upgrade, Expect, chunked uploads, HTTP/1.0, heads it does not
 * recognise) is handed with the connection to node:http, the general path, for the rest of that connection.
 */

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

/** What the fast path needs from the ServiceProxy that owns it. */
export interface FastPathOwner {
  readonly environment: string;
  readonly service: string;
  readonly canaryWeight: number;
  readonly timeoutMs: number;
  /** The weighted pick for a request without a forced track. */
  weightedTrack(): Track;
  /** Round robin over a track's instances: the chosen one, or undefined when the track has none. */
  pickHost(track: Track): UpstreamHost | undefined;
  recordSample(track: Track, status: number, latencyMs: number, at: number): void;
  begin(upstreamId: string): void;
  end(upstreamId: string): void;
  upstreamFailed(upstream: Upstream, error: Error): void;
  /** Passes a connection, with bytes already read from it put back, to the general path. */
  handOver(socket: Socket): void;
  clock(): number;
}

/** The client's keep-alive: an idle connection (or one sending a head this slowly) is closed after it. */
export const CLIENT_IDLE_MS = 30_000;
/** An idle socket to an instance is closed after this, and reused only well within the instance's own timeout. */
const UPSTREAM_IDLE_MS = 30_000;
const DEFAULT_UPSTREAM_REUSE_MS = 4_000;
/** Bytes of pipelined requests buffered per client while one is answered before reading from it pauses. */
const MAX_PIPELINED_BYTES = 64 * 1024;
const READ_BUFFER_BYTES = 64 * 1024;
/** Below this a response head and the start of its body go out in one copied buffer (one write). */
const COALESCE_BYTES = 16 * 1024;
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;

export class FastPath {
  readonly clientIdle = new DeadlineList(CLIENT_IDLE_MS);
  readonly upstreamIdle = new DeadlineList(UPSTREAM_IDLE_MS);
  readonly responseWait: DeadlineList;
  private readonly hosts = new Map<string, UpstreamHost>();
  private readonly clients = new Set<ClientConnection>();
  closing = false;

  constructor(readonly owner: FastPathOwner) {
    this.responseWait = new DeadlineList(owner.timeoutMs);
  }

  accept(socket: Socket): void {
    this.clients.add(new ClientConnection(this, socket));
  }

  /** @internal */
  forget(client: ClientConnection): void {
    this.clients.delete(client);
  }

  /** The keep-alive pool of an instance, made on first use. */
  host(upstream: Upstream): UpstreamHost {
    const key = `${upstream.id}\u0000${upstream.host}\u0000${upstream.port}`;
    let host = this.hosts.get(key);
    if (!host || host.retired) {
      host = new UpstreamHost(this, upstream);
      this.hosts.set(key, host);
    }
    return host;
  }

  /** Closes the pools of instances no longer routed to (their busy sockets close once their answer is done). */
  retireExcept(inUse: ReadonlySet<UpstreamHost>): void {
    for (const [key, host] of this.hosts) {
      if (inUse.has(host)) continue;
      host.retire();
      this.hosts.delete(key);
    }
  }

  /** Closing with a grace period: idle client connections go now, busy ones after their answer. */
  closeIdleClients(): void {
    this.closing = true;
    for (const client of this.clients) if (client.idle) client.socket.destroy();
  }

  destroy(): void {
    this.closing = true;
    for (const client of this.clients) client.socket.destroy();
    for (const host of this.hosts.values()) host.retire();
    this.hosts.clear();
    this.clientIdle.clear();
    this.upstreamIdle.clear();
    this.responseWait.clear();
  }

  /** Routes a parsed request and sends it on, or answers it at once (bad track header, no instance). */
  start(client: ClientConnection, head: RequestHead, body: Buffer | null): void {
    const owner = this.owner;
    const started = performance.now();
    const at = owner.clock();
    let track: Track;
    let forced = false;
    if (head.forcedTrack !== undefined) {
      if (head.forcedTrack !== 'canary' && head.forcedTrack !== 'stable') {
        client.answer(400, `header ${TRACK_HEADER} must be "stable" or "canary", got ${JSON.stringify(head.forcedTrack)}\n`, undefined);
        return;
      }
      track = head.forcedTrack;
      forced = true;
    } else {
      track = owner.weightedTrack();
    }
    const host = owner.pickHost(track);
    if (!host) {
      client.answer(
        503,
        `no healthy instance of the ${track} track of ${owner.environment}/${owner.service}` + (track === 'canary' && !forced ? ` (canary weight is ${owner.canaryWeight})` : '') + '\n',
        track,
      );
      owner.recordSample(track, 503, performance.now() - started, at);
      return;
    }
    const exchange = new Exchange(this, client, head, track, host, started, at);
    client.exchange = exchange;
    owner.begin(host.upstream.id);
    exchange.send(body, client.bodyLeft === 0, started);
  }
}

/** The keep-alive pool of raw sockets to one instance. */
export class UpstreamHost {
  private idle: UpstreamConnection[] = [];
  retired = false;
  /**
   * The last response head this instance sent, as bytes, and what it parsed to: an instance answers most requests
   * with the same head (the Date changes once a second), so most heads are compared, not parsed.
   */
  private lastHeadBytes: Buffer | null = null;
  private lastHead: ResponseHead | null = null;
  private lastHeadBodiless = false;
  /** The client-side head made from lastHead for one track and connection option. */
  private lastOut: Buffer | null = null;
  private lastOutKey = '';

  constructor(
    readonly fast: FastPath,
    readonly upstream: Upstream,
  ) {}

  acquire(now: number): UpstreamConnection {
    while (this.idle.length > 0) {
      const connection = this.idle.pop()!;
      this.fast.upstreamIdle.disarm(connection);
      if (connection.reusable(now)) return connection;
      connection.destroy();
    }
    return new UpstreamConnection(this);
  }

  release(connection: UpstreamConnection): void {
    if (this.retired || this.fast.closing) {
      connection.destroy();
      return;
    }
    connection.idleSince = performance.now();
    this.idle.push(connection);
    this.fast.upstreamIdle.arm(connection, connection.idleSince);
  }

  /** An idle socket the instance closed, or that sat idle too long. */
  drop(connection: UpstreamConnection): void {
    const index = this.idle.indexOf(connection);
    if (index >= 0) this.idle.splice(index, 1);
    this.fast.upstreamIdle.disarm(connection);
  }

  /**
   * Where the head starting at `start` ends when it is the last one again, byte for byte (-1 otherwise). The last
   * head ends at its first blank line, so a match also finds the end without searching for it.
   */
  matchHead(data: Buffer, start: number, bodiless: boolean): number {
    const known = this.lastHeadBytes;
    if (known === null || bodiless !== this.lastHeadBodiless || data.length - start < known.length) return -1;
    return data.compare(known, 0, known.length, start, start + known.length) === 0 ? start + known.length : -1;
  }

  get knownHead(): ResponseHead | null {
    return this.lastHead;
  }

  parseHead(data: Buffer, start: number, end: number, bodiless: boolean): ResponseHead | null {
    const known = this.lastHeadBytes;
    if (known !== null && bodiless === this.lastHeadBodiless && known.length === end - start && data.compare(known, 0, known.length, start, end) === 0) return this.lastHead;
    const head = parseResponseHead(data, start, end, bodiless, TRACK_HEADER);
    if (head === null) return null;
    this.lastHeadBytes = Buffer.from(data.subarray(start, end));
    this.lastHead = head;
    this.lastHeadBodiless = bodiless;
    this.lastOut = null;
    return head;
  }

  /** The head for the client: the instance's, plus the track, plus how the client connection goes on. */
  clientHead(head: ResponseHead, track: Track, close: boolean): Buffer {
    const key = close ? `${track}:close` : track;
    if (head === this.lastHead && this.lastOut !== null && this.lastOutKey === key) return this.lastOut;
    const out = Buffer.from(`${head.head}${TRACK_HEADER}: ${track}\r\n${close ? 'connection: close' : 'keep-alive: timeout=30'}\r\n\r\n`, 'latin1');
    if (head === this.lastHead) {
      this.lastOut = out;
      this.lastOutKey = key;
    }
    return out;
  }

  retire(): void {
    this.retired = true;
    for (const connection of this.idle) {
      this.fast.upstreamIdle.disarm(connection);
      connection.destroy();
    }
    this.idle = [];
  }
}

/** How a socket to an instance failed, for the answer and for the instance's owner. */
class UpstreamFailure extends Error {
  constructor(
    message: string,
    readonly code: string,
    /** Refused, reset or closed: the owner re-checks the instance at once. */
    readonly connectionLevel: boolean,
  ) {
    super(message);
  }
}

/** One raw keep-alive socket to an instance, reading with a reused buffer (no allocation per read). */
class UpstreamConnection implements Timed {
  deadlinePrev: Timed | null = null;
  deadlineNext: Timed | null = null;
  deadlineAt = 0;
  deadlineList: DeadlineList | null = null;
  readonly socket: Socket;
  exchange: Exchange | null = null;
  idleSince = 0;
  /** Answered at least one request: a failure before any byte may be a keep-alive race, not the request's fault. */
  served = false;
  private readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  private partialHead: Buffer | null = null;
  private inBody = false;
  private framing: Framing = Framing.None;
  private left = 0;
  private chunked: ChunkedScanner | null = null;
  private keepAlive = true;
  private reuseMs = DEFAULT_UPSTREAM_REUSE_MS;
  private closed = false;
  /** Bytes of the current response received so far (a request that got none may be retried). */
  received = 0;

  constructor(readonly host: UpstreamHost) {
    const { upstream } = host;
    this.socket = connect({
      host: upstream.host,
      port: upstream.port,
      noDelay: true,
      onread: { buffer: () => this.readBuffer, callback: (n: number) => this.onRead(n) },
    });
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.lost(err));
    this.socket.on('end', () => this.lost(undefined));
    this.socket.on('close', () => this.lost(undefined));
    this.socket.on('drain', () => this.exchange?.upstreamDrained());
  }

  reusable(now: number): boolean {
    return !this.closed && now - this.idleSince < this.reuseMs;
  }

  /** Starts waiting for the answer to a request just written. */
  expect(exchange: Exchange): void {
    this.exchange = exchange;
    this.inBody = false;
    this.partialHead = null;
    this.received = 0;
  }

  write(head: string, body: Buffer | null): boolean {
    const socket = this.socket;
    if (body === null) return socket.write(head, 'latin1');
    socket.cork();
    socket.write(head, 'latin1');
    const flushed = socket.write(body);
    socket.uncork();
    return flushed;
  }

  destroy(): void {
    this.closed = true;
    this.exchange = null;
    this.socket.destroy();
  }

  onDeadline(): void {
    this.host.drop(this);
    this.destroy();
  }

  private lost(err: NodeJS.ErrnoException | undefined): void {
    const wasClosed = this.closed;
    this.closed = true;
    const exchange = this.exchange;
    this.exchange = null;
    if (!exchange) {
      if (!wasClosed) this.host.drop(this);
      this.socket.destroy();
      return;
    }
    if (this.inBody && this.framing === Framing.Close && err === undefined) {
      exchange.responseEnded(false);
      return;
    }
    const code = err?.code ?? 'ECONNRESET';
    const message = err ? (err.code ?? err.message) : 'the instance closed the connection before the answer was complete';
    exchange.upstreamFailed(new UpstreamFailure(message, code, true));
    this.socket.destroy();
  }

  /** Bytes from the instance: the answer's head is parsed, then the body is passed on as it comes. */
  private onRead(n: number): boolean {
    const exchange = this.exchange;
    if (!exchange) {
      // Bytes nobody asked for: this socket's framing can no longer be trusted.
      this.host.drop(this);
      this.destroy();
      return false;
    }
    this.received += n;
    let data = this.readBuffer.subarray(0, n);
    let offset = 0;
    if (!this.inBody) {
      if (this.partialHead) {
        data = Buffer.concat([this.partialHead, data]);
        this.partialHead = null;
      }
      let head: ResponseHead | null = null;
      while (head === null) {
        const matched = this.host.matchHead(data, offset, exchange.bodiless);
        if (matched >= 0) {
          head = this.host.knownHead!;
          offset = matched;
          if (head.status < 200) head = null;
          continue;
        }
        const end = data.indexOf(CRLF2, offset);
        if (end < 0) {
          if (data.length - offset > MAX_RESPONSE_HEAD_BYTES) return this.broken(exchange, 'a response head over 64 KiB');
          this.partialHead = Buffer.from(data.subarray(offset));
          exchange.touch();
          return true;
        }
        head = this.host.parseHead(data, offset, end + 4, exchange.bodiless);
        offset = end + 4;
        if (head === null) return this.broken(exchange, 'a malformed response head');
        if (head.status === 101) return this.broken(exchange, 'a 101 answer to a request that asked for no upgrade');
        if (head.status < 200) head = null; // interim answers stay between the instance and the proxy
      }
      this.inBody = true;
      this.framing = head.framing;
      this.left = head.contentLength;
      this.keepAlive = head.keepAlive;
      if (head.keepAliveMs > 0) this.reuseMs = Math.max(head.keepAliveMs - 1000, head.keepAliveMs / 2);
      if (head.framing === Framing.Chunked) (this.chunked ??= new ChunkedScanner()).reset();
      const bodyEnd = this.bodyEnd(data, offset);
      if (bodyEnd === -2) return this.broken(exchange, 'a malformed chunked body');
      const keepReading = exchange.respond(head, data, offset, bodyEnd < 0 ? data.length : bodyEnd, data.buffer === this.readBuffer.buffer);
      if (bodyEnd < 0) {
        exchange.touch();
        return keepReading;
      }
      // Complete: a slow client holds up this answer's flushing, not the next answer on this socket.
      this.done(exchange, bodyEnd < data.length);
      return true;
    }
    const bodyEnd = this.bodyEnd(data, 0);
    if (bodyEnd === -2) return this.broken(exchange, 'a malformed chunked body');
    const keepReading = exchange.forward(data, bodyEnd < 0 ? data.length : bodyEnd, true);
    if (bodyEnd < 0) {
      exchange.touch();
      return keepReading;
    }
    this.done(exchange, bodyEnd < data.length);
    return true;
  }

  /** The client's writes still hold a slice of the read buffer: read into a new one from now on. */
  detachReadBuffer(): void {
    this.readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  }

  /** Where the body ends in `data` from `from`: an index, -1 (not in this piece), -2 (broken framing). */
  private bodyEnd(data: Buffer, from: number): number {
    switch (this.framing) {
      case Framing.None:
        return from;
      case Framing.Length: {
        const take = Math.min(this.left, data.length - from);
        this.left -= take;
        return this.left === 0 ? from + take : -1;
      }
      case Framing.Chunked:
        return this.chunked!.scan(data, from, data.length);
      default:
        return -1;
    }
  }

  private done(exchange: Exchange, extraBytes: boolean): void {
    this.exchange = null;
    this.served = true;
    if (this.keepAlive && !extraBytes && exchange.requestSent && !this.closed) this.host.release(this);
    else this.destroy();
    exchange.responseEnded(true);
  }

  private broken(exchange: Exchange, what: string): false {
    this.destroy();
    exchange.upstreamFailed(new UpstreamFailure(`the instance sent ${what}`, 'EPROTO', false));
    return false;
  }
}

/** One proxied request on the fast path. */
class Exchange implements Timed {
  deadlinePrev: Timed | null = null;
  deadlineNext: Timed | null = null;
  deadlineAt = 0;
  deadlineList: DeadlineList | null = null;
  private connection: UpstreamConnection | null = null;
  readonly bodiless: boolean;
  /** Every byte of the request went upstream (the connection can be reused for the next one). */
  requestSent = false;
  private responded = false;
  private status = 0;
  private finished = false;
  /** The instance broke the answer off (502), as opposed to the client leaving (499). */
  private broken = false;
  /** The last bytes are written but not yet flushed to the client. */
  private flushing = false;
  private retried = false;
  /** Reading from the instance is paused until the client takes what was sent (its time is not the instance's). */
  private waitingForClient = false;

  constructor(
    readonly fast: FastPath,
    readonly client: ClientConnection,
    readonly head: RequestHead,
    readonly track: Track,
    readonly host: UpstreamHost,
    readonly started: number,
    readonly at: number,
  ) {
    this.bodiless = head.method === 'HEAD';
  }

  send(body: Buffer | null, complete: boolean, now = performance.now()): void {
    const connection = this.host.acquire(now);
    this.connection = connection;
    connection.expect(this);
    this.fast.responseWait.arm(this, now);
    this.requestSent = complete;
    if (!connection.write(this.head.upstreamHead, body)) this.client.socket.pause();
  }

  /** More of the request body from the client. */
  sendBody(chunk: Buffer, last: boolean): void {
    const connection = this.connection;
    if (!connection || this.finished) return;
    if (last) this.requestSent = true;
    if (!connection.socket.write(chunk)) this.client.socket.pause();
  }

  upstreamDrained(): void {
    if (!this.finished) this.client.resumeReading();
  }

  /** The response head and whatever of the body came with it. */
  respond(head: ResponseHead, data: Buffer, from: number, to: number, fromReadBuffer: boolean): boolean {
    this.responded = true;
    this.status = head.status;
    const client = this.client;
    if (head.framing === Framing.Close) client.closeAfter = true;
    const text = this.host.clientHead(head, this.track, client.closeAfter || this.fast.closing);
    const bodyBytes = to - from;
    const socket = client.socket;
    let flushed: boolean;
    if (bodyBytes === 0) {
      flushed = socket.write(text);
    } else if (bodyBytes <= COALESCE_BYTES) {
      const out = Buffer.allocUnsafe(text.length + bodyBytes);
      text.copy(out, 0);
      data.copy(out, text.length, from, to);
      flushed = socket.write(out);
    } else {
      socket.cork();
      socket.write(text);
      flushed = socket.write(data.subarray(from, to));
      socket.uncork();
      if (fromReadBuffer && socket.writableLength > 0) this.connection?.detachReadBuffer();
    }
    return this.afterWrite(flushed);
  }

  /** Body bytes after the head. */
  forward(data: Buffer, to: number, fromReadBuffer: boolean): boolean {
    if (to === 0) return true;
    const socket = this.client.socket;
    const flushed = socket.write(to === data.length ? data : data.subarray(0, to));
    if (fromReadBuffer && socket.writableLength > 0) this.connection?.detachReadBuffer();
    return this.afterWrite(flushed);
  }

  /** A slow client pauses reading from the instance until it has taken what was sent. */
  private afterWrite(flushed: boolean): boolean {
    if (!flushed) this.waitingForClient = true;
    return flushed && !this.finished;
  }

  touch(): void {
    if (!this.finished) this.fast.responseWait.arm(this);
  }

  clientDrained(): void {
    if (this.flushing) {
      this.flushing = false;
      this.finish(this.status);
      return;
    }
    if (!this.finished && this.connection && this.responded) {
      this.waitingForClient = false;
      this.touch();
      this.connection.socket.resume();
    }
  }

  /** The whole answer went to the client (or is queued for it). */
  responseEnded(_framed: boolean): void {
    this.connection = null;
    this.fast.responseWait.disarm(this);
    if (this.client.socket.writableLength > 0) {
      this.flushing = true;
      return;
    }
    this.finish(this.status);
  }

  upstreamFailed(failure: UpstreamFailure): void {
    if (this.finished) return;
    const connection = this.connection;
    this.connection = null;
    this.fast.responseWait.disarm(this);
    const { upstream } = this.host;
    if (!this.responded) {
      // A keep-alive socket the instance closed as it was reused: a request without a body that got no byte back is
      // sent once more on a new socket (what undici does on the general path).
      const method = this.head.method;
      const idempotent = method === 'GET' || method === 'HEAD';
      if (failure.connectionLevel && connection?.served && connection.received === 0 && !this.retried && idempotent && this.head.contentLength === 0 && !this.client.gone) {
        this.retried = true;
        this.send(null, true);
        return;
      }
      if (failure.connectionLevel) this.fast.owner.upstreamFailed(upstream, failure);
      this.client.answer(502, `instance ${upstream.id} (${upstream.host}:${upstream.port}) failed: ${failure.message}\n`, this.track);
      this.finish(502);
      return;
    }
    if (failure.connectionLevel) this.fast.owner.upstreamFailed(upstream, failure);
    // Headers are out: all that can be done is cut the client's connection so it sees the answer is incomplete.
    this.broken = true;
    this.client.socket.destroy();
  }

  /** No response head (or no body progress) within the upstream timeout. */
  onDeadline(): void {
    if (this.finished) return;
    if (this.waitingForClient) {
      this.touch();
      return;
    }
    const connection = this.connection;
    this.connection = null;
    connection?.destroy();
    if (this.responded) {
      this.broken = true;
      this.client.socket.destroy();
      return;
    }
    const { upstream } = this.host;
    this.client.answer(504, `instance ${upstream.id} sent no response within ${this.fast.owner.timeoutMs} ms\n`, this.track);
    this.finish(504);
  }

  /** The client connection closed while this was under way. */
  clientGone(): void {
    if (this.finished) return;
    const connection = this.connection;
    this.connection = null;
    connection?.destroy();
    this.fast.responseWait.disarm(this);
    this.finish(this.broken ? 502 : CLIENT_CLOSED, false);
  }

  private finish(status: number, next = true): void {
    if (this.finished) return;
    this.finished = true;
    const owner = this.fast.owner;
    owner.recordSample(this.track, status, performance.now() - this.started, this.at);
    owner.end(this.host.upstream.id);
    if (next) this.client.exchangeFinished();
  }
}

/** One client connection on the fast path: requests are answered one at a time, in order. */
export class ClientConnection implements Timed {
  deadlinePrev: Timed | null = null;
  deadlineNext: Timed | null = null;
  deadlineAt = 0;
  deadlineList: DeadlineList | null = null;
  exchange: Exchange | null = null;
  /** Body bytes of the current request (or of one answered early) still to come from the client. */
  bodyLeft = 0;
  /** The client asked for `connection: close`, or the answer is delimited by closing. */
  closeAfter = false;
  gone = false;
  private buffered: Buffer | null = null;
  /**
   * The last request head as bytes and its parse: a client on a keep-alive connection mostly repeats itself. The
   * head ends at its first blank line, so when the bytes match again, so does the end (no search for it).
   */
  private lastHeadBytes: Buffer | null = null;
  private lastHead: RequestHead | null = null;
  private finishedWriting = false;
  private paused = false;
  private parsing = false;
  private readonly address: string;
  private readonly onData = (chunk: Buffer) => this.data(chunk);
  private readonly onEnd = () => this.clientEnded();
  private readonly onClose = () => this.closed();
  private readonly onDrain = () => this.exchange?.clientDrained();

  constructor(
    readonly fast: FastPath,
    readonly socket: Socket,
  ) {
    this.address = socket.remoteAddress ?? '';
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
    socket.on('error', ignore);
    fast.clientIdle.arm(this);
  }

  get idle(): boolean {
    return this.exchange === null && this.buffered === null;
  }

  onDeadline(): void {
    this.socket.destroy();
  }

  resumeReading(): void {
    if (!this.gone && (this.buffered?.length ?? 0) <= MAX_PIPELINED_BYTES) this.socket.resume();
  }

  /** An answer made by the proxy itself (400, 502, 503, 504). */
  answer(status: number, body: string, track: Track | undefined): void {
    if (this.gone || this.finishedWriting) return;
    const close = this.closeAfter || this.fast.closing;
    this.socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        (track ? `${TRACK_HEADER}: ${track}\r\n` : '') +
        `${close ? 'connection: close' : 'keep-alive: timeout=30'}\r\n\r\n${body}`,
    );
  }

  exchangeFinished(): void {
    this.exchange = null;
    if (this.gone) return;
    if (this.closeAfter || this.fast.closing) {
      this.endWriting();
      return;
    }
    this.resumeReading();
    this.next();
  }

  private data(chunk: Buffer): void {
    let rest = chunk;
    if (this.bodyLeft > 0) {
      const n = Math.min(this.bodyLeft, rest.length);
      this.bodyLeft -= n;
      this.exchange?.sendBody(n === rest.length ? rest : rest.subarray(0, n), this.bodyLeft === 0);
      if (n === rest.length) {
        // The rest of a body answered early was just dropped: the next request may start.
        if (this.bodyLeft === 0 && this.exchange === null) this.next();
        return;
      }
      rest = rest.subarray(n);
    }
    this.buffered = this.buffered === null ? rest : Buffer.concat([this.buffered, rest]);
    if (this.exchange === null) this.next();
    else if (this.buffered.length > MAX_PIPELINED_BYTES) this.socket.pause();
  }

  /** Starts the next complete request in the buffer, if nothing is under way. */
  private next(): void {
    if (this.parsing) return;
    this.parsing = true;
    try {
      while (this.exchange === null && this.bodyLeft === 0 && this.buffered !== null && !this.gone && !this.finishedWriting) {
        const buf = this.buffered;
        let start = 0;
        // Empty lines before a request line are allowed (RFC 9112 §2.2).
        while (start + 1 < buf.length && buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
        const known = this.lastHeadBytes;
        const repeated = known !== null && buf.length - start >= known.length && buf.compare(known, 0, known.length, start, start + known.length) === 0;
        const headEnd = repeated ? start + known.length - 4 : buf.indexOf(CRLF2, start);
        if (headEnd < 0 || headEnd + 4 - start > MAX_HEAD_BYTES) {
          if (buf.length - start > MAX_HEAD_BYTES) {
            this.handOver();
            return;
          }
          this.buffered = start === buf.length ? null : start > 0 ? buf.subarray(start) : buf;
          break;
        }
        const end = headEnd + 4;
        const head = repeated ? this.lastHead : this.parseHead(buf, start, end);
        if (head === null) {
          this.buffered = start > 0 ? buf.subarray(start) : buf;
          this.handOver();
          return;
        }
        const bodyHere = Math.min(head.contentLength, buf.length - end);
        this.buffered = end + bodyHere < buf.length ? buf.subarray(end + bodyHere) : null;
        this.bodyLeft = head.contentLength - bodyHere;
        if (head.close) this.closeAfter = true;
        this.fast.clientIdle.disarm(this);
        this.fast.start(this, head, bodyHere > 0 ? buf.subarray(end, end + bodyHere) : null);
        if (this.exchange === null && (this.closeAfter || this.fast.closing)) this.endWriting();
      }
      if (this.exchange === null && !this.gone && !this.finishedWriting) this.fast.clientIdle.arm(this);
    } finally {
      this.parsing = false;
    }
  }

  private parseHead(buf: Buffer, start: number, end: number): RequestHead | null {
    const head = parseRequestHead(buf, start, end, TRACK_HEADER, this.address);
    if (head !== null) {
      this.lastHeadBytes = Buffer.from(buf.subarray(start, end));
      this.lastHead = head;
    }
    return head;
  }

  private endWriting(): void {
    if (this.finishedWriting) return;
    this.finishedWriting = true;
    this.fast.clientIdle.disarm(this);
    this.socket.end();
  }

  /**
   * The client stopped sending. As node:http does (without httpAllowHalfOpen), an answer under way is abandoned
   * (recorded as 499) and the connection is closed once what was already written is flushed.
   */
  private clientEnded(): void {
    const exchange = this.exchange;
    this.exchange = null;
    exchange?.clientGone();
    this.buffered = null;
    this.endWriting();
  }

  private closed(): void {
    this.gone = true;
    this.fast.clientIdle.disarm(this);
    this.fast.forget(this);
    this.exchange?.clientGone();
    this.exchange = null;
  }

  /**
   * node:http takes the connection over, starting with the bytes not consumed yet. The socket is paused first so
   * those bytes are buffered (not emitted to no listener), and resumed after node:http attached its own, so they
   * reach its parser before anything read later.
   */
  private handOver(): void {
    const socket = this.socket;
    this.fast.clientIdle.disarm(this);
    this.fast.forget(this);
    socket.removeListener('data', this.onData);
    socket.removeListener('end', this.onEnd);
    socket.removeListener('close', this.onClose);
    socket.removeListener('drain', this.onDrain);
    socket.removeListener('error', ignore);
    socket.pause();
    if (this.buffered) socket.unshift(this.buffered);
    this.buffered = null;
    this.fast.owner.handOver(socket);
    socket.resume();
  }
}

function ignore(): void {}

export type { RequestHead };
