/** What a person reads when the http(s) environments repository cannot be reached, is not git, or wants credentials. */
import { readFileSync, readdirSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { LocalGitProvider, RemoteRepo, type DigestChange } from '../../../lib/gitprovider/index.js';
import { startGitHttp, type GitHttpServer } from '../../support/git-http.js';
import { acceptingVerifier as verify, digestChange, digestOf, fixedClock as clock, makeEnvRepo, type TestRepo } from '../../support/promotion-repo.js';

const NEW = digestOf('ab');
const change = (overrides: Partial<DigestChange> = {}): DigestChange => digestChange(NEW, overrides);

/** A server that wants HTTP basic auth and passes what it accepts on to `target`. */
async function basicAuthProxy(target: string, user: string, password: string): Promise<{ url: string; close(): Promise<void> }> {
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    if (req.headers.authorization !== expected) {
      req.resume();
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="envs"' }).end('unauthorized');
      return;
    }
    const forward = request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    forward.on('error', () => res.writeHead(502).end());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('local git provider on an http(s) remote that does not answer as hoped', () => {
  let r: TestRepo;
  let server: GitHttpServer;

  beforeEach(async () => {
    r = makeEnvRepo({ bare: true });
    r.git(['config', 'http.receivepack', 'true'], r.repo);
    server = await startGitHttp(r.root);
  });
  afterEach(async () => {
    await server.close();
    r.cleanup();
  });

  describe('errors name the URL without credentials', () => {
    it('says when nothing listens at the address', async () => {
      const dead = await basicAuthProxy(server.url, 'x', 'y');
      await dead.close();
      const promise = RemoteRepo.connect(`${dead.url.replace('http://', 'http://bot:s3cret@')}/envs.git`, { mirror: join(r.root, 'mirror.git') });
      await expect(promise).rejects.toMatchObject({ code: 'REMOTE_UNREACHABLE', message: `cannot fetch ${dead.url}/envs.git: ECONNREFUSED (is the server up and the address right?)` });
    });

    it('says when the URL is not a git repository', async () => {
      await expect(RemoteRepo.connect(`${server.url}/nothing.git`, { mirror: join(r.root, 'mirror.git') })).rejects.toMatchObject({
        code: 'NOT_A_GIT_REMOTE',
        message: expect.stringContaining(`cannot fetch ${server.url}/nothing.git: it is not a git repository served over smart HTTP`),
      });
      const web = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>'));
      await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', () => resolve()));
      const plain = `http://127.0.0.1:${(web.address() as AddressInfo).port}/envs.git`;
      try {
        await expect(RemoteRepo.connect(plain, { mirror: join(r.root, 'mirror-2.git') })).rejects.toMatchObject({ code: 'NOT_A_GIT_REMOTE', message: expect.stringContaining(plain) });
      } finally {
        web.closeAllConnections();
        await new Promise<void>((resolve) => web.close(() => resolve()));
      }
    });

    it('asks for SLIPWAY_GIT_TOKEN when the server wants credentials, refuses a wrong one, and works with the right one', async () => {
      const guarded = await basicAuthProxy(server.url, 'deploy-bot', 'tok-123');
      const at = `${guarded.url}/envs.git`;
      try {
        await expect(RemoteRepo.connect(at, { mirror: join(r.root, 'm1.git'), env: {} })).rejects.toMatchObject({
          code: 'AUTH_FAILED',
          message: `cannot fetch ${at}: the server refused the credentials (HTTP 401); set SLIPWAY_GIT_TOKEN (and SLIPWAY_GIT_USERNAME if the server needs one)`,
        });
        const wrong = RemoteRepo.connect(at.replace('http://', 'http://deploy-bot:nope@'), { mirror: join(r.root, 'm2.git'), env: {} });
        await expect(wrong).rejects.toMatchObject({ code: 'AUTH_FAILED', message: expect.stringContaining('check that the token is valid') });
        await expect(wrong).rejects.not.toThrow(/nope/);

        const env = { SLIPWAY_GIT_TOKEN: 'tok-123', SLIPWAY_GIT_USERNAME: 'deploy-bot', SLIPWAY_HOME: join(r.root, 'home') };
        const repo = await RemoteRepo.connect(at, { env });
        const p = await new LocalGitProvider({ repo, verify, clock }).propose(change());
        expect(r.git(['rev-parse', `refs/heads/${p.branch}`], r.repo)).toBe(p.headCommit);
        // The mirror lives under SLIPWAY_HOME and keeps no credentials.
        const mirrors = readdirSync(join(r.root, 'home', 'promotion', 'remotes'));
        expect(mirrors).toHaveLength(1);
        const config = readFileSync(join(r.root, 'home', 'promotion', 'remotes', mirrors[0]!, 'config'), 'utf8');
        expect(config).toContain(`url = ${at}`);
        expect(config).not.toMatch(/tok-123|deploy-bot/);
      } finally {
        await guarded.close();
      }
    });
  });
});
