/**
 * `slipway build --envs http://...`: a signed build of examples/hello lands in staging of an environments
 * repository served by `git http-backend`, and the `git` CLI cloning that remote sees the merge.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createServiceRepo, type ServiceRepo } from '../support/fixtures/service-repo.js';
import { startGitHttp, type GitHttpServer } from '../support/git-http.js';
import { makeEnvRepo, type TestRepo } from '../support/promotion-repo.js';
import { makeKey } from '../lib/provenance/fixtures.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function git(args: string[], cwd: string): Promise<string> {
  const env = { PATH: process.env.PATH, HOME: cwd, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' };
  return (await promisify(execFile)('git', args, { cwd, env, encoding: 'utf8', timeout: 30_000 })).stdout.trim();
}

describe('slipway build --envs <http(s) URL>', () => {
  let tmp: string;
  let service: ServiceRepo;
  let envs: TestRepo;
  let server: GitHttpServer;
  let keyFile: string;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'slipway-build-remote-'));
    service = await createServiceRepo({ dir: join(tmp, 'hello') });
    // The trust policy of the environments repository allows sources under https://git.example/shop/.
    await service.git('remote', 'add', 'origin', 'https://git.example/shop/hello');
    const key = makeKey('builder');
    keyFile = join(tmp, 'builder.key');
    await writeFile(keyFile, key.privateKeyPem);
    envs = makeEnvRepo({ bare: true, services: ['hello'], stagingAutoMerge: true, publicKeyPem: key.publicKeyPem });
    envs.git(['config', 'http.receivepack', 'true'], envs.repo);
    server = await startGitHttp(envs.root);
  });
  afterAll(async () => {
    await server?.close();
    envs?.cleanup();
    await rm(tmp, { recursive: true, force: true });
  });

  function slipway(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((done, fail) => {
      const child = spawn(process.execPath, [join(root, 'bin', 'slipway.js'), ...args], {
        cwd: tmp,
        env: { PATH: process.env.PATH, HOME: tmp, SLIPWAY_HOME: join(tmp, 'home'), SLIPWAY_FROM_SOURCE: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', fail);
      child.on('close', (code) => done({ code, stdout, stderr }));
    });
  }

  it('merges the signed digest into staging on the remote, where a git clone finds it with its source commit', async () => {
    const url = `${server.url}/envs.git`;
    const out = await slipway('build', service.dir, '--registry', `oci:${join(tmp, 'images')}`, '--key', keyFile, '--envs', url, '--json');
    expect(out.stderr).not.toMatch(/slipway build:/);
    expect(out.code).toBe(0);
    const result = JSON.parse(out.stdout) as { digest: string; repository: string; promotion: { outcome: string; environment: string; proposal: { id: string; branch: string }; merge: { mergeCommit: string } } };
    expect(result.promotion).toMatchObject({ outcome: 'merged', environment: 'staging' });

    await git(['clone', '-q', url, 'check'], tmp);
    const check = join(tmp, 'check');
    expect(await git(['rev-parse', 'HEAD'], check)).toBe(result.promotion.merge.mergeCommit);
    expect(await git(['show', 'HEAD:staging/services/hello.yaml'], check)).toContain(`digest: ${result.digest}`);
    expect(await git(['log', '-1', '--format=%(trailers:key=Slipway-Source-Commit,valueonly)', 'HEAD'], check)).toBe(service.commit);
    expect(await git(['branch', '-r', '--merged', 'HEAD'], check)).toContain(`origin/${result.promotion.proposal.branch}`);
    await git(['fsck', '--strict', '--no-dangling'], check);

    expect(envs.git(['rev-parse', 'main'], envs.repo)).toBe(result.promotion.merge.mergeCommit);

    // The read commands fetch the remote, then read it.
    const log = await slipway('log', '--repo', url, '--service', 'hello', '--env', 'staging', '--json');
    expect(log.code).toBe(0);
    expect((JSON.parse(log.stdout) as { entries: { digest: string }[] }).entries[0]).toMatchObject({ digest: result.digest });
    const proposals = await slipway('proposals', '--repo', url, '--state', 'merged', '--json');
    expect(proposals.code).toBe(0);
    expect(proposals.stdout).toContain(result.promotion.proposal.id);
    const frozen = await slipway('freeze', 'status', '--repo', url, '--env', 'production');
    expect(frozen.code).toBe(0);
    // A signed build, a first mirror clone and five CLI processes: minutes, not seconds, on a loaded 2-core machine.
  }, 240_000);
});
