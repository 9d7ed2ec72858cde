/** `slipway verify` as a user runs it: the real CLI process, a real registry, a slipway.yaml on disk. */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openImageStore, pushImage, type ImageStore } from '../../lib/oci/index.js';
import { buildProvenance } from '../../builder/provenance/index.js';
import { signAndAttach } from '../../builder/sign/index.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { smallImage } from '../support/images.js';
import { COMMIT, description, makeKey } from '../lib/provenance/fixtures.js';

const ROOT = resolve(import.meta.dirname, '../..');
const key = makeKey('release');

const POLICY = `apiVersion: slipway.dev/v1
kind: Slipway
metadata:
  name: acme
spec:
  environments: [staging, production]
  trust:
    keys:
      - name: release
        publicKey: keys/release.pub
    builders:
      - https://slipway.dev/builder/v1
    sources:
      - repo: https://git.example/acme/*
        branches: [main]
`;

let registry: TestRegistry;
let work: string;
let home: string;
let store: ImageStore;

function slipway(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/slipway.js'), ...args], {
      cwd: work,
      env: { ...process.env, SLIPWAY_FROM_SOURCE: '1', SLIPWAY_HOME: home, NODE_OPTIONS: '' },
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

async function pushSigned(body: string, overrides: Parameters<typeof description>[1] = {}): Promise<string> {
  const digest = await pushImage(store, await smallImage([{ name: 'app.txt', body }]));
  await signAndAttach({ store, digest, key, statement: buildProvenance(description(digest, { image: { name: store.repository, digest }, ...overrides })) });
  return digest;
}

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), 'slipway-cli-verify-'));
  home = join(work, 'home');
  await mkdir(join(work, 'envrepo', 'keys'), { recursive: true });
  await writeFile(join(work, 'envrepo', 'slipway.yaml'), POLICY);
  await writeFile(join(work, 'envrepo', 'keys', 'release.pub'), key.publicKeyPem);
  store = openImageStore(`${registry.host}/acme/web`);
}, 45_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('slipway verify', () => {
  describe('when a trusted builder signed the image from an allowed source', () => {
    it('prints who built it from what and exits 0', async () => {
      const digest = await pushSigned('good\n');
      const run = await slipway(['verify', `${registry.host}/acme/web@${digest}`, '--policy', 'envrepo/slipway.yaml']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(`verified ${registry.host}/acme/web@${digest} (service web)`);
      expect(run.stdout).toContain('built by   https://slipway.dev/builder/v1 (slipway 0.1.0)');
      expect(run.stdout).toContain(`from       https://git.example/acme/web refs/heads/main at ${COMMIT}`);
      expect(run.stdout).toContain('signed by  key release');
    }, 45_000);

    it('prints JSON with --json', async () => {
      const digest = await pushSigned('json\n');
      const run = await slipway(['verify', `${registry.host}/acme/web@${digest}`, '--policy', 'envrepo/slipway.yaml', '--json', '--no-cache']);
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout)).toEqual(expect.objectContaining({ ok: true, service: 'web', provenance: expect.objectContaining({ digest, keyName: 'release' }) }));
    }, 45_000);
  });

  describe('when the source branch is not allowed', () => {
    it('exits 1 with SOURCE_NOT_ALLOWED', async () => {
      const digest = await pushSigned('branch\n', { source: { repo: 'https://git.example/acme/web', ref: 'refs/heads/experiment', commit: COMMIT } });
      const run = await slipway(['verify', `${registry.host}/acme/web@${digest}`, '--policy', 'envrepo/slipway.yaml']);
      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(/^refused .*\n {2}SOURCE_NOT_ALLOWED: built from https:\/\/git\.example\/acme\/web branch 'experiment'/);
    }, 45_000);
  });

  describe('when the input is wrong', () => {
    it('refuses a tag with exit 2 and says to use a digest', async () => {
      const run = await slipway(['verify', `${registry.host}/acme/web:latest`, '--policy', 'envrepo/slipway.yaml']);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('names no digest');
    }, 45_000);

    it('names the file, line and column of a broken policy, with exit 2', async () => {
      await writeFile(join(work, 'envrepo', 'broken.yaml'), POLICY.replace('builders:\n      - https://slipway.dev/builder/v1\n', 'builders: []\n'));
      const run = await slipway(['verify', `${registry.host}/acme/web@sha256:${'a'.repeat(64)}`, '--policy', 'envrepo/broken.yaml']);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/envrepo\/broken\.yaml:\d+:\d+ spec\.trust\.builders/);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }, 45_000);
  });
});
