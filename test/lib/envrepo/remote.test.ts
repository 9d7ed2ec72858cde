import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchRepo, loadDesiredState, openRepo, remoteCacheDir, resolveRef } from '../../../lib/envrepo/index.js';
import { exampleRepo, git, type TestRepo } from './gitrepo.js';
import { startGitHttpServer, type GitHttpServer } from './githttp.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('an environments repository opened by URL', () => {
  let work: string;
  let source: TestRepo & { first: string };
  let server: GitHttpServer;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'slipway-remote-'));
    source = exampleRepo();
    execFileSync('git', ['clone', '-q', '--bare', source.dir, join(work, 'served', 'envs.git')]);
    server = await startGitHttpServer(join(work, 'served'));
    env = { SLIPWAY_HOME: join(work, 'home') };
  });
  afterAll(async () => {
    await server.close();
    source.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  it('is cloned into $SLIPWAY_HOME/repos over smart HTTP and loads like a local one', async () => {
    const url = `${server.url}/envs.git`;
    const repo = await openRepo({ repo: url, env });
    expect(repo.gitdir.startsWith(join(work, 'home', 'repos'))).toBe(true);
    const commit = await resolveRef({ repo, ref: 'main' });
    expect(commit).toBe(source.first);
    const result = await loadDesiredState({ repo, commit });
    expect(result.ok).toBe(true);
  });

  it('sees new commits after a fetch', async () => {
    const url = `${server.url}/envs.git`;
    const repo = await openRepo({ repo: url, env });
    const next = source.commit({ 'staging/services/hello.yaml': source.read('staging/services/hello.yaml').replace('replicas: 1', 'replicas: 2') });
    git(source.dir, 'push', '-q', join(work, 'served', 'envs.git'), 'main');
    expect(await resolveRef({ repo, ref: 'main' })).toBe(source.first);
    await fetchRepo(repo);
    expect(await resolveRef({ repo, ref: 'main' })).toBe(next);
  });

  it('is what `slipway validate --repo <url>` reads', async () => {
    // Asynchronous: the git server runs in this process, so a synchronous spawn would starve it.
    const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [join(ROOT, 'bin', 'slipway.js'), 'validate', '--json', '--repo', `${server.url}/envs.git`, '--ref', 'main'], {
        env: { PATH: process.env.PATH, SLIPWAY_HOME: join(work, 'cli-home'), SLIPWAY_FROM_SOURCE: '1' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true, repo: `${server.url}/envs.git`, environments: [{ name: 'staging' }, { name: 'production' }] });
  });

  it('keeps credentials out of the cache path and of messages', async () => {
    const withToken = `${server.url.replace('http://', 'http://user:s3cret@')}/missing.git`;
    const err = await openRepo({ repo: withToken, env }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'FETCH_FAILED', kind: 'waiting' });
    expect((err as Error).message).not.toContain('s3cret');
    expect(remoteCacheDir(withToken, env)).toBe(remoteCacheDir(`${server.url}/missing.git`, env));
    expect(existsSync(remoteCacheDir(withToken, env))).toBe(false);
  });
});
