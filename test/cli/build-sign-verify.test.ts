/**
 * The supply chain as a user drives it: `slipway init` (key + environments repo), `slipway build` (signs and
 * attaches by default), `slipway verify` against the init'ed slipway.yaml. Real processes, real registry.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { openImageStore } from '../../lib/oci/index.js';
import { loadTrustPolicyFile, verifyImage } from '../../lib/provenance/index.js';
import { createServiceRepo, type ServiceRepo } from '../support/fixtures/service-repo.js';
import { startRegistry, skopeo, type TestRegistry } from '../support/registry.js';

const execFileAsync = promisify(execFile);
const BIN = resolve('bin/slipway.js');

let tmp: string;
let repo: ServiceRepo;
let registry: TestRegistry;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'slipway-build-sign-'));
  repo = await createServiceRepo({ dir: join(tmp, 'hello') });
  registry = await startRegistry();
}, 45_000);
afterAll(async () => {
  await registry?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function slipway(args: string[], home: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: tmp, SLIPWAY_HOME: home, SLIPWAY_FROM_SOURCE: '1', ...env },
      cwd: tmp,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

// One SLIPWAY_HOME throughout: the pipeline runs once, later builds of the same commit are cache hits.
describe('slipway build then slipway verify', () => {
  const home = () => join(tmp, 'home');
  let unsignedRef: string;

  describe('before any signing key exists', () => {
    it('pushes unsigned with a warning that deploys will be refused', async () => {
      const built = await slipway(['build', repo.dir, '--registry', join(tmp, 'unsigned-layout')], home());
      expect(built.code).toBe(0);
      expect(built.stderr).toContain('unsigned: no signing key');
      expect(built.stderr).toContain('NO_ATTESTATION');
      unsignedRef = built.stdout.trim();
    }, 50_000);

    it('fails the build with --sign, saying how to get a key', async () => {
      const built = await slipway(['build', repo.dir, '--registry', join(tmp, 'must-sign'), '--sign'], home());
      expect(built.code).toBe(2);
      expect(built.stderr).toContain('run `slipway init`');
    }, 45_000);
  });

  describe('after slipway init made the key and the policy that trusts it', () => {
    let imageRef: string;

    beforeAll(async () => {
      const init = await slipway(['init', join(tmp, 'envrepo')], home());
      expect(init.code).toBe(0);
      const built = await slipway(['build', repo.dir, '--registry', `${registry.host}/hello`], home());
      expect(built.stderr).toMatch(/signed: SLSA provenance by key slipway, attached as .*:sha256-[a-f0-9]{64}\.att/);
      expect(built.code).toBe(0);
      imageRef = built.stdout.trim();
    }, 45_000);

    it('verifies the image and names the builder, the source repository, branch and commit', async () => {
      const run = await slipway(['verify', imageRef, '--policy', join(tmp, 'envrepo', 'slipway.yaml')], home());
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(`verified ${imageRef} (service hello)`);
      expect(run.stdout).toContain('built by   https://slipway.dev/builder/v1');
      expect(run.stdout).toContain(`refs/heads/main at ${repo.commit}`);
      expect(run.stdout).toContain('signed by  key slipway');
    }, 45_000);

    it('left a cosign .att manifest skopeo can read', async () => {
      const hex = imageRef.split('@sha256:')[1];
      const raw = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${registry.host}/hello:sha256-${hex}.att`]));
      expect(raw.layers[0].mediaType).toBe('application/vnd.dsse.envelope.v1+json');
    });

    it('refuses the same image pushed unsigned elsewhere: NO_ATTESTATION', async () => {
      expect(unsignedRef.split('@')[1]).toBe(imageRef.split('@')[1]); // reproducible: same digest
      // In-process (the CLI's exit 1 path is covered by verify.test.ts): one process spawn less.
      const { policy, publicKeys } = loadTrustPolicyFile(join(tmp, 'envrepo', 'slipway.yaml'));
      const [repository, digest] = unsignedRef.split('@') as [string, string];
      const result = await verifyImage({ store: openImageStore(repository), repository, digest, service: 'hello', policy, publicKeys });
      expect(result).toMatchObject({ ok: false, code: 'NO_ATTESTATION' });
    }, 45_000);
  });
});
