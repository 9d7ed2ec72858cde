/**
 * An OCI distribution registry (`host:port/name`) on Node's fetch (and node:http for the streamed
 * layer upload, which needs to know when each chunk has left). Plain http for loopback hosts,
 * https otherwise. Basic and Bearer challenges are answered from the credentials given (or
 * SLIPWAY_REGISTRY_USERNAME / SLIPWAY_REGISTRY_PASSWORD). Only 408, 429, 5xx and connection errors
 * are retried, with exponential backoff. Every read is checked against its digest.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SlipwayError } from '../errors.js';
import { assertDigest, computeDigest, isDigest, verifyDigest } from './digest.js';
import { MEDIA_TYPES, type BlobUpload, type Descriptor, type FetchedManifest, type ImageStore } from './types.js';

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryOptions {
  credentials?: RegistryCredentials;
  /** Force plain http (default: only for 127.0.0.1, localhost and [::1]). */
  plainHttp?: boolean;
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  /** Per request, in ms (default 60 s). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  fetch?: typeof fetch;
}

const MANIFEST_ACCEPT = [
  MEDIA_TYPES.imageManifest,
  MEDIA_TYPES.imageIndex,
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

export interface ParsedRepository {
  host: string;
  name: string;
}

export function parseRegistryRepository(repository: string): ParsedRepository {
  const slash = repository.indexOf('/');
  const host = slash > 0 ? repository.slice(0, slash) : '';
  const name = slash > 0 ? repository.slice(slash + 1) : '';
  if (!host || !name || !/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(name)) {
    throw new SlipwayError(
      'INVALID_REPOSITORY',
      `registry repository "${repository}" is invalid: expected host[:port]/name with a lower-case name (e.g. 127.0.0.1:5000/hello), or oci:<dir>`,
      'stalling',
      { repository },
    );
  }
  return { host, name };
}

/** 127.0.0.1, localhost and [::1] (with any port): spoken to over plain http by default. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/:\d+$/, '');
  return h === '127.0.0.1' || h === 'localhost' || h === '[::1]';
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="https://auth",service="registry",scope="repository:x:pull"` → scheme + params. */
export function parseWwwAuthenticate(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]!)) !== null) {
    if (!p[0]) break;
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

class RetriableError extends Error {
  constructor(
    message: string,
    /** From a Retry-After header: how long the server asked us to wait. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** `Retry-After: 3` or an HTTP date → milliseconds from now (undefined when absent or unreadable). */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

interface SendOptions {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: Uint8Array | ReadableStream<Uint8Array>;
  /** Access needed: `pull` or `pull,push`. */
  access: 'pull' | 'pull,push';
  /** Statuses the caller handles itself (no error thrown). */
  expect: number[];
}

export class RegistryStore implements ImageStore {
  readonly repository: string;
  private readonly host: string;
  private readonly name: string;
  private readonly base: string;
  private readonly credentials: RegistryCredentials | undefined;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;
  /** Authorization header per access level, learned from the last challenge. */
  private readonly authorization = new Map<string, string>();

  constructor(repository: string, opts: RegistryOptions = {}) {
    const { host, name } = parseRegistryRepository(repository);
    this.repository = repository;
    this.host = host;
    this.name = name;
    const plain = opts.plainHttp ?? isLoopback(host);
    this.base = `${plain ? 'http' : 'https'}://${host}`;
    const env = opts.env ?? process.env;
    this.credentials =
      opts.credentials ??
      (env.SLIPWAY_REGISTRY_USERNAME ? { username: env.SLIPWAY_REGISTRY_USERNAME, password: env.SLIPWAY_REGISTRY_PASSWORD ?? '' } : undefined);
    this.attempts = Math.max(1, opts.retry?.attempts ?? 4);
    this.baseDelayMs = opts.retry?.baseDelayMs ?? 200;
    this.maxDelayMs = opts.retry?.maxDelayMs ?? 5_000;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.fetchFn = opts.fetch ?? fetch;
  }

  async hasBlob(digest: string): Promise<boolean> {
    assertDigest(digest);
    const res = await this.send({ method: 'HEAD', url: this.url(`blobs/${digest}`), access: 'pull', expect: [200, 404] });
    return res.status === 200;
  }

  async putBlob(digest: string, data: Uint8Array): Promise<void> {
    assertDigest(digest);
    if (await this.hasBlob(digest)) return;
    verifyDigest(data, digest, `blob for ${this.repository}`);
    // An upload session that failed half-way is abandoned; the retry starts a new one.
    await this.retrying(`upload blob ${digest}`, async () => {
      const start = await this.send({ method: 'POST', url: this.url('blobs/uploads/'), access: 'pull,push', expect: [202], noRetry: true });
      const location = start.headers.get('location');
      if (!location) throw new SlipwayError('REGISTRY_PROTOCOL', `${this.repository}: upload started without a Location header`, 'generic');
      const target = new URL(location, this.base);
      target.searchParams.set('digest', digest);
      const put = await this.send({
        method: 'PUT',
        url: target.toString(),
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
        body: data,
        access: 'pull,push',
        expect: [201],
        noRetry: true,
      });
      const stored = put.headers.get('docker-content-digest');
      if (stored && stored !== digest) {
        throw new SlipwayError('DIGEST_MISMATCH', `${this.repository} stored blob ${digest} as ${stored}`, 'stalling', { expected: digest, actual: stored });
      }
    });
    if (!(await this.hasBlob(digest))) {
      throw new SlipwayError('REGISTRY_PROTOCOL', `${this.repository} accepted blob ${digest} but does not have it`, 'waiting', { digest });
    }
  }

  /**
   * A streamed upload: one session, the chunks sent in one chunked PATCH as they come (the registry
   * receives and hashes while the caller is still compressing), then the closing PUT with the digest.
   * The session is opened first, so an auth challenge is answered before any body is sent; a streamed
   * body cannot be replayed, so nothing here is retried: on failure the caller uses putBlob. The PATCH
   * goes through node:http rather than fetch because `write` must say when a chunk's memory is free
   * again (the layer builder reuses its buffers), which a fetch body stream cannot.
   */
  async startBlobUpload(): Promise<BlobUpload> {
    const start = await this.send({ method: 'POST', url: this.url('blobs/uploads/'), access: 'pull,push', expect: [202] });
    await start.body?.cancel();
    const started = start.headers.get('location');
    if (!started) throw new SlipwayError('REGISTRY_PROTOCOL', `${this.repository}: upload started without a Location header`, 'generic');
    const session = new URL(started, this.base);
    const authorization = this.authorization.get('pull,push');
    const request = session.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(session, {
      method: 'PATCH',
      headers: { 'content-type': 'application/octet-stream', ...(authorization ? { authorization } : {}) },
      timeout: this.timeoutMs,
    });
    let failure: Error | undefined;
    const fail = (err: Error) => {
      failure ??= err;
      req.destroy();
    };
    req.on('timeout', () => fail(new Error(`PATCH ${session.pathname}: no progress for ${this.timeoutMs} ms`)));
    const answered = new Promise<IncomingMessage>((resolve, reject) => {
      req.on('response', resolve);
      req.on('error', (err) => {
        fail(err);
        reject(failure);
      });
    });
    answered.catch(() => undefined);
    let sent = 0;
    return {
      write: (chunk) =>
        new Promise<void>((resolve, reject) => {
          if (failure) return reject(failure);
          sent += chunk.length;
          req.write(chunk, (err) => (err ? reject(failure ?? err) : resolve()));
        }),
      finish: async (digest, size) => {
        assertDigest(digest);
        if (failure) throw failure;
        if (size !== sent) throw new Error(`the upload of ${digest} sent ${sent} bytes, not ${size}`);
        req.end();
        const res = await answered;
        const detail = await readAll(res);
        if (res.statusCode !== 202) {
          throw new SlipwayError('REGISTRY_ERROR', `${this.repository}: PATCH ${session.pathname} answered HTTP ${res.statusCode} ${summarize(detail)}`.trim(), 'generic', { status: res.statusCode, repository: this.repository });
        }
        // `Range: 0-<last byte>`: what the registry received.
        const range = /^(?:bytes=)?0-(\d+)$/.exec(String(res.headers.range ?? ''));
        if (range && Number(range[1]) + 1 !== size) {
          throw new SlipwayError('REGISTRY_PROTOCOL', `${this.repository} received ${Number(range[1]) + 1} of the ${size} bytes of ${digest}`, 'generic', { digest });
        }
        const location = new URL(typeof res.headers.location === 'string' ? res.headers.location : session.toString(), this.base);
        location.searchParams.set('digest', digest);
        const put = await this.sendAuthorized({ method: 'PUT', url: location.toString(), headers: { 'content-length': '0' }, access: 'pull,push', expect: [201] });
        await put.body?.cancel();
        const stored = put.headers.get('docker-content-digest');
        if (stored && stored !== digest) {
          throw new SlipwayError('DIGEST_MISMATCH', `${this.repository} stored blob ${digest} as ${stored}`, 'stalling', { expected: digest, actual: stored });
        }
      },
      abort: async () => {
        fail(new Error('upload abandoned'));
      },
    };
  }

  async getBlob(digest: string): Promise<Buffer> {
    assertDigest(digest);
    const res = await this.send({ method: 'GET', url: this.url(`blobs/${digest}`), access: 'pull', expect: [200, 404] });
    if (res.status === 404) {
      throw new SlipwayError('BLOB_NOT_FOUND', `blob ${digest} is not in ${this.repository}`, 'stalling', { digest, repository: this.repository });
    }
    const bytes = Buffer.from(await res.arrayBuffer());
    verifyDigest(bytes, digest, `blob ${digest} from ${this.repository}`);
    return bytes;
  }

  async putManifest(bytes: Uint8Array, mediaType: string, tag?: string): Promise<string> {
    const digest = computeDigest(bytes);
    for (const reference of tag ? [digest, tag] : [digest]) {
      const res = await this.send({
        method: 'PUT',
        url: this.url(`manifests/${reference}`),
        headers: { 'content-type': mediaType },
        body: bytes,
        access: 'pull,push',
        expect: [201],
      });
      const stored = res.headers.get('docker-content-digest');
      if (stored && stored !== digest) {
        throw new SlipwayError('DIGEST_MISMATCH', `${this.repository} stored manifest ${digest} as ${stored}`, 'stalling', { expected: digest, actual: stored });
      }
    }
    return digest;
  }

  async getManifest(reference: string): Promise<FetchedManifest | undefined> {
    const res = await this.send({
      method: 'GET',
      url: this.url(`manifests/${reference}`),
      headers: { accept: MANIFEST_ACCEPT },
      access: 'pull',
      expect: [200, 404],
    });
    if (res.status === 404) return undefined;
    const bytes = Buffer.from(await res.arrayBuffer());
    const actual = computeDigest(bytes);
    const expected = isDigest(reference) ? reference : res.headers.get('docker-content-digest') ?? actual;
    verifyDigest(bytes, expected, `manifest ${reference} from ${this.repository}`);
    let mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    if (!mediaType || mediaType === 'application/json') {
      try {
        mediaType = (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? MEDIA_TYPES.imageManifest;
      } catch {
        mediaType = MEDIA_TYPES.imageManifest;
      }
    }
    return { digest: actual, mediaType, bytes };
  }

  async listTags(): Promise<string[]> {
    const tags: string[] = [];
    let next: string | undefined = this.url('tags/list?n=1000');
    while (next) {
      const res: Response = await this.send({ method: 'GET', url: next, access: 'pull', expect: [200, 404] });
      if (res.status === 404) return [];
      const body = (await res.json()) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      const link = res.headers.get('link');
      const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
      next = m ? new URL(m[1]!, this.base).toString() : undefined;
    }
    return [...new Set(tags)].sort();
  }

  async referrers(digest: string, artifactType?: string): Promise<Descriptor[] | undefined> {
    assertDigest(digest);
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const res = await this.send({ method: 'GET', url: this.url(`referrers/${digest}${query}`), access: 'pull', expect: [200, 404, 400, 405] });
    if (res.status !== 200) return undefined;
    let body: { manifests?: Descriptor[] };
    try {
      body = (await res.json()) as { manifests?: Descriptor[] };
    } catch {
      return undefined;
    }
    if (!Array.isArray(body.manifests)) return undefined;
    return artifactType ? body.manifests.filter((m) => m.artifactType === artifactType) : body.manifests;
  }

  private url(path: string): string {
    return `${this.base}/v2/${this.name}/${path}`;
  }

  private async send(opts: SendOptions & { noRetry?: boolean }): Promise<Response> {
    const once = () => this.sendAuthorized(opts);
    return opts.noRetry ? once() : this.retrying(`${opts.method} ${opts.url}`, once);
  }

  private async sendAuthorized(opts: SendOptions): Promise<Response> {
    let res = await this.fetchOnce(opts, this.authorization.get(opts.access));
    if (res.status === 401) {
      await res.body?.cancel();
      const header = res.headers.get('www-authenticate');
      const authorization = await this.answerChallenge(header, opts.access);
      this.authorization.set(opts.access, authorization);
      res = await this.fetchOnce(opts, authorization);
      if (res.status === 401 || res.status === 403) {
        await res.body?.cancel();
        throw this.authError(res.status, `the registry refused the credentials${this.credentials ? ` of user "${this.credentials.username}"` : ''}`);
      }
    }
    if (res.status === 403) {
      await res.body?.cancel();
      throw this.authError(403, 'access denied');
    }
    if (opts.expect.includes(res.status)) return res;
    const detail = await res.text().catch(() => '');
    if (res.status === 408 || res.status === 429 || res.status >= 500) {
      throw new RetriableError(`${opts.method} ${opts.url}: HTTP ${res.status} ${summarize(detail)}`, retryAfterMs(res.headers.get('retry-after')));
    }
    throw new SlipwayError(
      'REGISTRY_ERROR',
      `${this.repository}: ${opts.method} ${new URL(opts.url).pathname} answered HTTP ${res.status} ${summarize(detail)}`.trim(),
      res.status === 404 ? 'stalling' : 'generic',
      { status: res.status, repository: this.repository },
    );
  }

  private async fetchOnce(opts: SendOptions, authorization: string | undefined): Promise<Response> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (authorization) headers.authorization = authorization;
    try {
      const streamed = opts.body !== undefined && !(opts.body instanceof Uint8Array);
      return await this.fetchFn(opts.url, {
        method: opts.method,
        headers,
        body: opts.body,
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'follow',
        // A stream body (an upload while the data is made) must say so to undici.
        ...(streamed ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      throw new RetriableError(`${opts.method} ${opts.url}: ${cause?.code ?? (err as Error).message}`);
    }
  }

  private async answerChallenge(header: string | null, access: string): Promise<string> {
    const challenge = header ? parseWwwAuthenticate(header) : undefined;
    if (!challenge) throw this.authError(401, 'the registry asked for authentication without a usable WWW-Authenticate challenge');
    if (challenge.scheme === 'basic') {
      if (!this.credentials) throw this.authError(401, 'the registry needs a username and password (set SLIPWAY_REGISTRY_USERNAME and SLIPWAY_REGISTRY_PASSWORD)');
      return basic(this.credentials);
    }
    if (challenge.scheme === 'bearer') {
      const realm = challenge.params.realm;
      if (!realm) throw this.authError(401, 'the Bearer challenge has no realm');
      const tokenUrl = new URL(realm);
      if (challenge.params.service) tokenUrl.searchParams.set('service', challenge.params.service);
      tokenUrl.searchParams.set('scope', `repository:${this.name}:${access}`);
      const headers: Record<string, string> = {};
      if (this.credentials) headers.authorization = basic(this.credentials);
      const res = await this.retrying(`token ${tokenUrl.origin}`, async () => {
        let r: Response;
        try {
          r = await this.fetchFn(tokenUrl, { headers, signal: AbortSignal.timeout(this.timeoutMs) });
        } catch (err) {
          throw new RetriableError(`token endpoint ${tokenUrl.origin}: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}`);
        }
        if (r.status === 408 || r.status === 429 || r.status >= 500) throw new RetriableError(`token endpoint: HTTP ${r.status}`);
        return r;
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw this.authError(res.status, `the token endpoint ${tokenUrl.origin}${tokenUrl.pathname} refused${this.credentials ? ` user "${this.credentials.username}"` : ' anonymous access'} (HTTP ${res.status})`);
      }
      const body = (await res.json()) as { token?: string; access_token?: string };
      const token = body.token ?? body.access_token;
      if (!token) throw this.authError(401, 'the token endpoint answered without a token');
      return `Bearer ${token}`;
    }
    throw this.authError(401, `unsupported authentication scheme "${challenge.scheme}"`);
  }

  private authError(status: number, why: string): SlipwayError {
    return new SlipwayError('REGISTRY_AUTH', `${this.repository}: ${why} (HTTP ${status})`, 'stalling', { status, repository: this.repository });
  }

  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let last: unknown;
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof RetriableError)) throw err;
        last = err;
        if (attempt + 1 < this.attempts) {
          const backoff = this.baseDelayMs * 2 ** attempt * (0.5 + Math.random() / 2);
          const delay = Math.min(this.maxDelayMs, Math.max(backoff, err.retryAfterMs ?? 0));
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    }
    throw new SlipwayError(
      'REGISTRY_UNAVAILABLE',
      `registry ${this.host} is unavailable (${what}, ${this.attempts} attempts): ${(last as Error).message}`,
      'waiting',
      { repository: this.repository },
      { cause: last },
    );
  }
}

function basic(c: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

async function readAll(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of res) parts.push(part as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

function summarize(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
}
