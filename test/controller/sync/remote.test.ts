/** Following main of an environments repo served over http(s) by a git host (here `git http-backend` on loopback). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { GitEnvironmentSource } from '../../../controller/sync/index.js';
import { Harness } from '../reconcile/harness.js';
import { EnvRepo, digestOf } from '../../support/envrepo.js';
import { startGitHttp, type GitHttpServer } from '../../support/git-http.js';

let server: GitHttpServer;
let repo: EnvRepo;
let home: string;
const previousHome = process.env.SLIPWAY_HOME;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'slipway-remote-home-'));
  process.env.SLIPWAY_HOME = home;
  repo = EnvRepo.create({ services: { web: { digest: digestOf('a') }, api: { digest: digestOf('a') } } });
  server = await startGitHttp(dirname(repo.dir));
});

afterAll(async () => {
  await server.close();
  repo.cleanup();
  rmSync(home, { recursive: true, force: true });
  if (previousHome === undefined) delete process.env.SLIPWAY_HOME;
  else process.env.SLIPWAY_HOME = previousHome;
});

describe('a remote environments repository', () => {
  it('is cloned once, then each head() fetches main and sees new commits', async () => {
    const source = new GitEnvironmentSource({ location: `${server.url}/${basename(repo.dir)}/.git` });
    expect(await source.head()).toBe(repo.head());
    repo.setService('staging', 'api', { digest: digestOf('b') });
    const next = repo.commit('api to b');
    const before = server.requests.length;
    expect(await source.head()).toBe(next);
    expect(server.requests.slice(before).some((r) => r.includes('git-upload-pack'))).toBe(true);
    const diff = await source.diff(undefined, next);
    expect(diff.services.map((s) => s.service).sort()).toEqual(['api', 'web']);
  });

  it('drives a reconcile like a repository on disk', async () => {
    const h = new Harness(repo);
    const remote = new GitEnvironmentSource({ location: `${server.url}/${basename(repo.dir)}/.git` });
    const reconciler = h.make(undefined, remote);
    const first = await reconciler.sync('startup');
    expect(first.error).toBeUndefined();
    expect(first.changed.map((c) => c.service).sort()).toEqual(['api', 'web']);
    repo.setService('staging', 'web', { digest: digestOf('c') });
    repo.commit('web to c');
    const second = await reconciler.sync('webhook');
    expect(second.changed).toEqual([{ environment: 'staging', service: 'web', outcome: 'Completed' }]);
    expect((await h.target.observe({ environment: 'staging', service: 'web' })).stable?.digest).toBe(digestOf('c'));
    rmSync(h.stateDir, { recursive: true, force: true });
  });
});
