/**
 * The real Debian `docker-registry` (distribution 2.8) on 127.0.0.1 with a free port and temp storage,
 * one per test file. Optional htpasswd (bcrypt) auth. `startAuthProxy` puts an in-process Bearer token
 * server and an auth-checking, fault-injecting reverse proxy in front of it.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';

const execFileAsync = promisify(execFile);

export interface TestRegistry {
  /** `127.0.0.1:<port>` */
  host: string;
  port: number;
  storage: string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  users?: Record<string, string>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-registry-'));
  const storage = join(dir, 'data');
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const lines = [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${storage}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      `  secret: ${randomBytes(16).toString('hex')}`,
    ];
    if (opts.users) {
      const htpasswd = join(dir, 'htpasswd');
      const entries = Object.entries(opts.users).map(([u, p]) => `${u}:${bcrypt.hashSync(p, 5)}`);
      await writeFile(htpasswd, entries.join('\n') + '\n');
      lines.push('auth:', '  htpasswd:', '    realm: slipway-test', `    path: ${htpasswd}`);
    }
    const configFile = join(dir, 'config.yml');
    await writeFile(configFile, lines.join('\n') + '\n');
    const child = spawn('docker-registry', ['serve', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const up = await waitUp(port, child);
    if (up) {
      return {
        host: `127.0.0.1:${port}`,
        port,
        storage,
        stop: async () => {
          await stopChild(child);
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    await stopChild(child);
    lastError = stderr;
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`docker-registry did not start: ${lastError}`);
}

async function waitUp(port: number, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v2/`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) return true;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export interface ProxyOptions {
  /** Bearer auth: users allowed to get a token (anonymous gets none). */
  users?: Record<string, string>;
  /** Answer this status to the next `count` requests whose path matches. */
  fault?: { status: number; count: number; match?: RegExp; retryAfter?: string };
  /** Rewrite response bodies (e.g. corrupt a blob) for paths that match. */
  tamper?: { match: RegExp; body: (original: Buffer) => Buffer };
}

export interface AuthProxy {
  host: string;
  /** Every request seen: method, path, status answered. */
  log: { method: string; path: string; status: number; at: number }[];
  tokenRequests: { scope: string | null; user: string | undefined }[];
  setFault(fault: ProxyOptions['fault']): void;
  stop(): Promise<void>;
}

/** A reverse proxy in front of `upstream`: Bearer token auth (with its own token endpoint), faults, tampering. */
export async function startAuthProxy(upstream: TestRegistry, opts: ProxyOptions = {}): Promise<AuthProxy> {
  const tokens = new Map<string, { user: string; scope: string }>();
  const log: AuthProxy['log'] = [];
  const tokenRequests: AuthProxy['tokenRequests'] = [];
  let fault = opts.fault ? { ...opts.fault } : undefined;
  const port = await freePort();
  const realm = `http://127.0.0.1:${port}/token`;

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const answer = (status: number, body = '', headers: Record<string, string> = {}) => {
      log.push({ method: req.method ?? '', path: url.pathname, status, at: Date.now() });
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(body);
    };
    if (url.pathname === '/token') {
      const user = basicUser(req.headers.authorization, opts.users ?? {});
      tokenRequests.push({ scope: url.searchParams.get('scope'), user });
      if (!user) return answer(401, JSON.stringify({ errors: [{ code: 'UNAUTHORIZED' }] }));
      const token = randomBytes(16).toString('hex');
      tokens.set(token, { user, scope: url.searchParams.get('scope') ?? '' });
      return answer(200, JSON.stringify({ token, expires_in: 300 }));
    }
    if (fault && fault.count > 0 && (!fault.match || fault.match.test(url.pathname))) {
      fault.count--;
      req.resume();
      return answer(fault.status, JSON.stringify({ errors: [{ code: 'UNAVAILABLE' }] }), fault.retryAfter ? { 'retry-after': fault.retryAfter } : {});
    }
    if (opts.users && url.pathname !== '/v2/') {
      const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
      const grant = m ? tokens.get(m[1]!) : undefined;
      const name = /^\/v2\/(.+?)\/(blobs|manifests|tags|referrers)\//.exec(url.pathname)?.[1] ?? '';
      const needsPush = !['GET', 'HEAD'].includes(req.method ?? 'GET');
      const allowed = grant && grant.scope.startsWith(`repository:${name}:`) && (!needsPush || grant.scope.split(':')[2]!.split(',').includes('push'));
      if (!allowed) {
        req.resume();
        return answer(401, JSON.stringify({ errors: [{ code: 'UNAUTHORIZED' }] }), {
          'www-authenticate': `Bearer realm="${realm}",service="slipway-test",scope="repository:${name}:${needsPush ? 'pull,push' : 'pull'}"`,
        });
      }
    }
    const forwarded = { ...req.headers };
    delete forwarded.authorization;
    const upstreamReq = httpRequest(
      { host: '127.0.0.1', port: upstream.port, method: req.method, path: req.url, headers: forwarded },
      (upstreamRes) => {
        const chunks: Buffer[] = [];
        upstreamRes.on('data', (c: Buffer) => chunks.push(c));
        upstreamRes.on('end', () => {
          let body: Buffer = Buffer.concat(chunks);
          const headers = { ...upstreamRes.headers };
          if (opts.tamper && opts.tamper.match.test(url.pathname) && req.method === 'GET') {
            body = opts.tamper.body(body);
            headers['content-length'] = String(body.length);
          }
          log.push({ method: req.method ?? '', path: url.pathname, status: upstreamRes.statusCode ?? 0, at: Date.now() });
          res.writeHead(upstreamRes.statusCode ?? 502, headers);
          res.end(req.method === 'HEAD' ? undefined : body);
        });
      },
    );
    upstreamReq.on('error', () => answer(502));
    req.pipe(upstreamReq);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${port}`,
    log,
    tokenRequests,
    setFault: (f) => (fault = f ? { ...f } : undefined),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function basicUser(header: string | undefined, users: Record<string, string>): string | undefined {
  const m = /^Basic (.+)$/.exec(header ?? '');
  if (!m) return undefined;
  const [user, ...rest] = Buffer.from(m[1]!, 'base64').toString('utf8').split(':');
  return user && users[user] === rest.join(':') ? user : undefined;
}

/** `skopeo inspect --raw` / config / digest of an image in a loopback registry (plain http). */
export async function skopeo(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('skopeo', args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}
