/**
 * The controller's HTTP API, on loopback by default.
 *
 * - `POST /api/v1/webhooks/git`: a push notification (GitHub's `X-Hub-Signature-256` HMAC over the raw
 *   body); triggers a sync at once. 401 when the signature is missing or wrong.
 * - `GET /api/v1/environments`, `GET /api/v1/environments/:env/services/:svc` (alias
 *   `/api/v1/rollouts/:env/:svc`), `POST /api/v1/rollouts/:env/:svc/promote`,
 *   `POST /api/v1/deployments` (propose a digest: a git change), `POST /api/v1/deployments/:env/:svc/rollback`
 *   (a revert commit), `POST /api/v1/sync`, `POST /api/v1/pipelines/trigger` (queue a builder job: 202 with its
 *   record, 429 when the queue is full), `GET /api/v1/pipelines` (recent jobs), `GET /api/v1/pipelines/:id`,
 *   `GET /api/v1/pipelines/:id/stages/:stage/log` (a finished stage's log, its last MiB),
 *   `POST /api/v1/pipelines/:id/cancel` (409 when it has ended),
 *   `GET /metrics`: need `Authorization: Bearer <token>`.
 * - `GET /healthz`: open, for liveness probes.
 * Bad input gets 4xx with `{ error: { code, message, field } }`, never a stack trace.
 */
import { createHmac, createHash, timingSafeEqual } from 'node:crypto';
import { open } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isSlipwayError } from '../../lib/errors.js';
import type { Controller } from '../controller.js';
import { checkPipelineRequest, JOB_STATES, redacted, type PipelineQueue } from '../pipelines/index.js';

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX_BODY = 1024 * 1024;
const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const JOB_STATE_NAMES = new Set<string>(JOB_STATES);

/** What the pipeline routes need of the job queue. */
export type PipelineService = Pick<PipelineQueue, 'trigger' | 'get' | 'list' | 'cancel' | 'limits' | 'metrics'>;

export interface ApiOptions {
  controller: Controller;
  /** Bearer token for every endpoint but /healthz and the webhook. */
  token: string;
  /** Shared secret of the git host's webhook; without one the webhook answers 401. */
  webhookSecret?: string;
  /** Builder jobs (`/api/v1/pipelines`); without it those routes answer 503. */
  pipelines?: PipelineService;
  host?: string;
  port?: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; version=0.0.4' : 'application/json', ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, 'TOO_LARGE', `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseJson(raw: Buffer): unknown {
  if (raw.length === 0) return {};
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'BAD_JSON', `the body is not valid JSON: ${(err as Error).message}`, '');
  }
}

/** Parse a JSON object body and refuse fields the endpoint does not know, naming them. */
function jsonBody(raw: Buffer, allowed: Record<string, 'string'>): Record<string, string> {
  if (raw.length === 0) return {};
  const data = parseJson(raw);
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new HttpError(400, 'BAD_JSON', 'the body must be a JSON object', '');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) {
    const type = allowed[k];
    if (!type) throw new HttpError(400, 'UNKNOWN_FIELD', `unknown field "${k}"; allowed: ${Object.keys(allowed).join(', ') || 'none'}`, k);
    if (typeof v !== type) throw new HttpError(400, 'BAD_FIELD', `field "${k}" must be a ${type}`, k);
    out[k] = v as string;
  }
  return out;
}

/** A path segment as given, decoded when it can be. */
function segment(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

const LOG_TAIL_BYTES = 1024 * 1024;

/** The last MiB of a stage log (the builder caps each log at 8 MiB). */
async function logTail(path: string): Promise<{ text: string; truncated: boolean }> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new HttpError(404, 'NOT_FOUND', `the log ${path} is gone (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}); build logs are kept under $SLIPWAY_HOME/builds until the next build of the same commit`, 'stage');
  }
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - LOG_TAIL_BYTES);
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    return { text: buffer.toString('utf8'), truncated: start > 0 };
  } finally {
    await handle.close();
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

export function verifyGithubSignature(secret: string, body: Buffer, header: string | undefined): boolean {
  if (!header || !header.startsWith('sha256=')) return false;
  const given = Buffer.from(header.slice('sha256='.length), 'hex');
  const expected = createHmac('sha256', secret).update(body).digest();
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function pathName(value: string, field: string): string {
  const decoded = decodeURIComponent(value);
  if (!NAME.test(decoded)) throw new HttpError(400, 'BAD_NAME', `${field} "${decoded}" is not a valid name (lowercase letters, digits, dashes)`, field);
  return decoded;
}

function matchRoute(method: string, path: string, wantMethod: string, pattern: string): Record<string, string> | undefined {
  if (method !== wantMethod) return undefined;
  const a = path.split('/').filter(Boolean);
  const b = pattern.split('/').filter(Boolean);
  if (a.length !== b.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < b.length; i++) {
    if (b[i]!.startsWith(':')) params[b[i]!.slice(1)] = a[i]!;
    else if (a[i] !== b[i]) return undefined;
  }
  return params;
}

export class ApiServer {
  private readonly server: Server;
  private url?: string;

  constructor(private readonly options: ApiOptions) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (err instanceof HttpError) {
          send(res, err.status, { error: { code: err.code, message: err.message, ...(err.field !== undefined ? { field: err.field } : {}) } });
        } else if (isSlipwayError(err)) {
          const status = err.code === 'NOT_FOUND' ? 404 : err.kind === 'stalling' ? 409 : 503;
          send(res, status, { error: { code: err.code, message: err.message } });
        } else {
          send(res, 500, { error: { code: 'INTERNAL', message: (err as Error).message } });
        }
      });
    });
  }

  async listen(): Promise<string> {
    const host = this.options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, host, () => resolve());
    });
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    return this.url;
  }

  get address(): string | undefined {
    return this.url;
  }

  private authorize(req: IncomingMessage): void {
    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    if (!token || !sameSecret(token, this.options.token)) {
      throw new HttpError(401, 'UNAUTHORIZED', 'missing or wrong bearer token (Authorization: Bearer <token>; see $SLIPWAY_HOME/controller/token)');
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const c = this.options.controller;
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const match = (m: string, pattern: string): Record<string, string> | undefined => matchRoute(method, url.pathname, m, pattern);
    let p: Record<string, string> | undefined;

    if (match('GET', '/healthz')) {
      const health = c.health();
      return send(res, health.ok ? 200 : 503, health);
    }
    if (match('POST', '/api/v1/webhooks/git')) {
      const body = await readBody(req);
      const secret = this.options.webhookSecret;
      if (!secret || !verifyGithubSignature(secret, body, req.headers['x-hub-signature-256'] as string | undefined)) {
        throw new HttpError(401, 'BAD_SIGNATURE', 'X-Hub-Signature-256 is missing or does not match the webhook secret');
      }
      const event = (req.headers['x-github-event'] as string | undefined) ?? 'push';
      if (event === 'ping') return send(res, 200, { ok: true, event });
      void c.trigger('webhook').catch(() => undefined);
      return send(res, 202, { accepted: true, event });
    }

    this.authorize(req);
    if (match('GET', '/metrics')) {
      const text = [await c.metricsText(), ...(this.options.pipelines ? [await this.options.pipelines.metrics.registry.metrics()] : [])];
      return send(res, 200, text.filter((t) => t.trim()).join('\n'), { 'content-type': c.metrics.registry.contentType });
    }
    if (match('GET', '/api/v1/environments')) {
      const only = url.searchParams.get('env');
      if (only !== null) pathName(only, 'env');
      return send(res, 200, { environments: c.environments().filter((e) => only === null || e.environment === only) });
    }
    if ((p = match('GET', '/api/v1/environments/:env'))) {
      const env = pathName(p.env!, 'env');
      const found = c.environments().find((e) => e.environment === env);
      if (!found) throw new HttpError(404, 'NOT_FOUND', `no environment "${env}"`, 'env');
      return send(res, 200, found);
    }
    if ((p = match('GET', '/api/v1/environments/:env/services/:svc') ?? match('GET', '/api/v1/rollouts/:env/:svc'))) {
      const environment = pathName(p.env!, 'env');
      const service = pathName(p.svc!, 'svc');
      const status = c.service(environment, service);
      if (!status) throw new HttpError(404, 'NOT_FOUND', `no service "${service}" in environment "${environment}"`, 'svc');
      return send(res, 200, { ...status, history: await c.history(environment, service) });
    }
    if ((p = match('POST', '/api/v1/rollouts/:env/:svc/promote'))) {
      const environment = pathName(p.env!, 'env');
      const service = pathName(p.svc!, 'svc');
      const body = jsonBody(await readBody(req), { actor: 'string' });
      const rec = await c.promote(environment, service, body.actor ?? 'api');
      return send(res, 200, c.service(rec.environment, rec.service));
    }
    if (match('POST', '/api/v1/deployments')) {
      const body = jsonBody(await readBody(req), { environment: 'string', service: 'string', digest: 'string', repository: 'string', actor: 'string', message: 'string' });
      for (const field of ['environment', 'service', 'digest'] as const) {
        if (!body[field]) throw new HttpError(400, 'MISSING_FIELD', `field "${field}" is required`, field);
      }
      const environment = pathName(body.environment!, 'environment');
      const service = pathName(body.service!, 'service');
      if (!/^sha256:[a-f0-9]{64}$/.test(body.digest!)) throw new HttpError(400, 'BAD_FIELD', 'field "digest" must be a full sha256:<64 hex> digest (tags are never deployed)', 'digest');
      const repository = body.repository ?? c.service(environment, service)?.repository;
      if (!repository) throw new HttpError(400, 'MISSING_FIELD', `field "repository" is required: ${service} does not run in ${environment} yet`, 'repository');
      const proposal = await c.propose({
        environment,
        service,
        digest: body.digest!,
        repository,
        ...(body.message ? { message: body.message } : {}),
        ...(body.actor ? { author: { name: body.actor, email: `${body.actor.replace(/[^A-Za-z0-9._-]/g, '') || 'api'}@slipway.invalid` } } : {}),
      });
      return send(res, 201, proposal);
    }
    if ((p = match('POST', '/api/v1/deployments/:env/:svc/rollback'))) {
      const environment = pathName(p.env!, 'env');
      const service = pathName(p.svc!, 'svc');
      const body = jsonBody(await readBody(req), { actor: 'string', reason: 'string' });
      const actor = body.actor ?? 'api';
      const result = await c.rollback(environment, service, actor, body.reason ?? `rollback requested by ${actor} through the API`);
      return send(res, 201, { environment, service, ...result });
    }
    if (match('POST', '/api/v1/sync')) {
      jsonBody(await readBody(req), {});
      return send(res, 200, await c.trigger('api'));
    }
    if (url.pathname === '/api/v1/pipelines' || url.pathname.startsWith('/api/v1/pipelines/')) return this.handlePipelines(req, res, method, url);
    throw new HttpError(404, 'NOT_FOUND', `no route ${method} ${url.pathname}`);
  }

  private async handlePipelines(req: IncomingMessage, res: ServerResponse, method: string, url: URL): Promise<void> {
    const pipelines = this.options.pipelines;
    const match = (m: string, pattern: string): Record<string, string> | undefined => matchRoute(method, url.pathname, m, pattern);
    let p: Record<string, string> | undefined;
    if (!pipelines) throw new HttpError(503, 'PIPELINES_DISABLED', 'this controller runs no builder jobs (it was started without a pipeline queue)');
    if (match('POST', '/api/v1/pipelines/trigger')) {
      const check = checkPipelineRequest(parseJson(await readBody(req)));
      if (!check.ok) throw new HttpError(400, check.code, check.message, check.field);
      try {
        const job = await pipelines.trigger(check.request);
        return send(res, 202, redacted(job), { location: `/api/v1/pipelines/${job.id}` });
      } catch (err) {
        if (isSlipwayError(err) && err.code === 'INVALID_REQUEST') throw new HttpError(400, 'BAD_FIELD', err.message, String(err.data.field ?? ''));
        if (isSlipwayError(err) && err.code === 'QUEUE_FULL') {
          return send(res, 429, { error: { code: err.code, message: err.message, queued: err.data.queued, running: err.data.running } }, { 'retry-after': '10' });
        }
        throw err;
      }
    }
    if (match('GET', '/api/v1/pipelines')) {
      const limitText = url.searchParams.get('limit');
      const limit = limitText === null ? 50 : Number(limitText);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, 'BAD_FIELD', `limit "${limitText}" must be a whole number from 1 to 1000`, 'limit');
      const state = url.searchParams.get('state');
      if (state !== null && !JOB_STATE_NAMES.has(state)) throw new HttpError(400, 'BAD_FIELD', `state "${state}" is not one of ${JOB_STATES.join(', ')}`, 'state');
      const jobs = pipelines.list(state === null ? limit : Number.MAX_SAFE_INTEGER).filter((j) => state === null || j.state === state).slice(0, limit);
      return send(res, 200, { jobs: jobs.map(redacted), limits: pipelines.limits });
    }
    if ((p = match('POST', '/api/v1/pipelines/:id/cancel'))) {
      const body = jsonBody(await readBody(req), { actor: 'string' });
      try {
        const job = await pipelines.cancel(segment(p.id!), body.actor ?? 'api');
        if (!job) throw new HttpError(404, 'NOT_FOUND', `no pipeline job "${segment(p.id!)}" (GET /api/v1/pipelines lists the recent ones)`, 'id');
        return send(res, 200, redacted(job));
      } catch (err) {
        if (isSlipwayError(err) && err.code === 'ALREADY_FINISHED') throw new HttpError(409, err.code, err.message);
        throw err;
      }
    }
    if ((p = match('GET', '/api/v1/pipelines/:id/stages/:stage/log'))) {
      const job = pipelines.get(segment(p.id!));
      if (!job) throw new HttpError(404, 'NOT_FOUND', `no pipeline job "${segment(p.id!)}" (GET /api/v1/pipelines lists the recent ones)`, 'id');
      const stage = job.stages.find((s) => s.name === segment(p!.stage!));
      if (!stage) throw new HttpError(404, 'NOT_FOUND', `pipeline job ${job.id} has no stage "${segment(p.stage!)}"; its stages: ${job.stages.map((s) => s.name).join(', ') || 'none yet'}`, 'stage');
      if (!stage.logPath) throw new HttpError(404, 'NOT_FOUND', `stage "${stage.name}" of ${job.id} has no log (it is ${stage.status}${stage.reason ? `: ${stage.reason}` : ''})`, 'stage');
      const { text, truncated } = await logTail(stage.logPath);
      return send(res, 200, text, { 'content-type': 'text/plain; charset=utf-8', ...(truncated ? { 'x-slipway-log-truncated': 'true' } : {}) });
    }
    if ((p = match('GET', '/api/v1/pipelines/:id'))) {
      const id = segment(p.id!);
      const job = JOB_ID.test(id) ? pipelines.get(id) : undefined;
      if (!job) throw new HttpError(404, 'NOT_FOUND', `no pipeline job "${id}" (GET /api/v1/pipelines lists the recent ones)`, 'id');
      return send(res, 200, redacted(job));
    }
    throw new HttpError(404, 'NOT_FOUND', `no route ${method} ${url.pathname}`);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
