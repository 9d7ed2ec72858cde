/** `slipway build --envs <repo>`: a real build of examples/hello lands its digest in the first environment. */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServiceRepo, type ServiceRepo } from '../support/fixtures/service-repo.js';
import { makeEnvRepo, type TestRepo } from '../support/promotion-repo.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('slipway build --envs', () => {
  let tmp: string;
  let service: ServiceRepo;
  let envs: TestRepo;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'slipway-build-envs-'));
    service = await createServiceRepo({ dir: join(tmp, 'hello') });
    envs = makeEnvRepo({ bare: true, services: ['hello'], stagingAutoMerge: true });
  });
  afterAll(async () => {
    envs.cleanup();
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

  it('proposes the built digest to staging with its source commit, and holds it when the provenance does not verify', async () => {
    const out = await slipway('build', service.dir, '--registry', `oci:${join(tmp, 'images')}`, '--envs', envs.repo, '--json');
    expect(out.code).toBe(0);
    const result = JSON.parse(out.stdout) as { digest: string; repository: string; promotion: { outcome: string; environment: string; proposal: { branch: string }; verification: { ok: boolean }; held?: { code: string } } };
    const { promotion } = result;
    expect(promotion.environment).toBe('staging');
    const branch = promotion.proposal.branch;
    expect(envs.git(['log', '-1', '--format=%(trailers:key=Slipway-Image,valueonly)', branch], envs.repo)).toBe(`${result.repository}@${result.digest}`);
    expect(envs.git(['log', '-1', '--format=%(trailers:key=Slipway-Source-Commit,valueonly)', branch], envs.repo)).toBe(service.commit);
    expect(envs.git(['log', '-1', '--format=%(trailers:key=Slipway-Source-Ref,valueonly)', branch], envs.repo)).toBe('refs/heads/main');
    // The environments repository trusts a key this build was not signed with, so even auto-merging staging holds it.
    expect(promotion).toMatchObject({ outcome: 'proposed', verification: { ok: false }, held: { code: 'NOT_VERIFIED' } });
    expect(envs.git(['show', 'main:staging/services/hello.yaml'], envs.repo)).not.toContain(result.digest);
  });
});
