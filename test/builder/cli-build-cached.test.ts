import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parseFastBuildArgs } from '../../cli/commands/build-cached.js';
import { defaultKeyPaths, generateKeyPair } from '../../lib/keys/index.js';
import { openImageStore } from '../../lib/oci/index.js';
import { createServiceRepo, type ServiceRepo } from '../support/fixtures/service-repo.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const execFileAsync = promisify(execFile);
const BIN = resolve('bin/slipway.js');
const FAST_ENTRY = pathToFileURL(resolve('cli/commands/build-cached.ts')).href;

let tmp: string;
let home: string;
let repo: ServiceRepo;
let registry: TestRegistry;
let layout: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function env(extra: Record<string, string> = {}, slipwayHome = home): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: tmp, SLIPWAY_HOME: slipwayHome, SLIPWAY_FROM_SOURCE: '1', ...extra };
}

async function run(args: string[], extra: Record<string, string> = {}, slipwayHome = home): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, args, { env: env(extra, slipwayHome), cwd: resolve('.'), timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** `slipway build …` as users run it (the fast path first, then the full CLI). */
const slipway = (args: string[], extra: Record<string, string> = {}) => run([BIN, 'build', ...args], extra);
/** The full CLI only. */
const fullCommand = (args: string[]) => run([BIN, 'build', ...args], { SLIPWAY_BUILD_FAST_PATH: '0' });

/** The fast path alone, saying whether it answered. */
async function fastPath(args: string[], slipwayHome = home): Promise<Run & { answered: boolean }> {
  const script = [
    `const { register } = await import('tsx/esm/api'); register();`,
    `const { tryCachedBuild } = await import(${JSON.stringify(FAST_ENTRY)});`,
    `const answered = await tryCachedBuild(JSON.parse(process.env.FAST_ARGS));`,
    `process.stderr.write('fast-path: ' + answered + '\\n');`,
  ].join('\n');
  const out = await run(['--input-type=module', '-e', script], { FAST_ARGS: JSON.stringify(args) }, slipwayHome);
  const m = /fast-path: (true|false)\n$/.exec(out.stderr);
  if (!m) throw new Error(`the fast path runner did not finish: ${out.stderr}`);
  return { ...out, stderr: out.stderr.slice(0, m.index), answered: m[1] === 'true' };
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'slipway-cli-build-cached-'));
  home = join(tmp, 'home');
  repo = await createServiceRepo({ dir: join(tmp, 'hello') });
  registry = await startRegistry();
  layout = join(tmp, 'layout');
  // One real build fills the cache; the second command puts the image into the registry too.
  const first = await slipway([repo.dir, '--commit', repo.commit, '--registry', layout, '--no-sign']);
  expect(first.code).toBe(0);
  const second = await slipway([repo.dir, '--commit', repo.commit, '--registry', `${registry.host}/hello`, '--no-sign']);
  expect(second.code).toBe(0);
}, 120_000);
afterAll(async () => {
  await registry?.stop();
  await rm(tmp, { recursive: true, force: true });
});

describe('slipway build on an unchanged commit, answered before the CLI loads', () => {
  it.each([
    ['an OCI layout', () => layout],
    ['a registry', () => `${registry.host}/hello`],
  ])('prints for %s exactly what the full command prints', async (_what, target) => {
    const args = [repo.dir, '--commit', repo.commit, '--registry', target()];
    const fast = await fastPath(args);
    expect(fast.answered).toBe(true);
    expect(fast.code).toBe(0);
    const full = await fullCommand(args);
    expect(full.code).toBe(0);
    expect(fast.stdout).toBe(full.stdout);
    expect(fast.stderr).toBe(full.stderr);
    expect(fast.stderr).toMatch(/^cache hit: sha256:[a-f0-9]{64} \(stages skipped\)\nunsigned: no signing key/);
    expect(fast.stderr).toMatch(/from cache: [a-f0-9]{12} \(main\)\n {2}lint +ok/);
  });

  it('prints the same JSON as the full command', async () => {
    const args = ['--repo', repo.dir, `--commit=${repo.commit}`, '--store', layout, '--json', '--no-sign'];
    const fast = await fastPath(args);
    expect(fast.answered).toBe(true);
    const full = await fullCommand(args);
    expect(JSON.parse(fast.stdout)).toEqual(JSON.parse(full.stdout));
    expect(JSON.parse(fast.stdout)).toMatchObject({ cached: true, source: { commit: repo.commit, branch: 'main' } });
  });

  it('leaves an image the target store lacks to the full command, which copies it from the cache', async () => {
    const fresh = join(tmp, 'fresh-layout');
    const args = [repo.dir, '--commit', repo.commit, '--registry', fresh, '--no-sign'];
    const fast = await fastPath(args);
    expect(fast).toMatchObject({ answered: false, stdout: '', stderr: '' });
    const copied = await slipway(args);
    expect(copied.code).toBe(0);
    expect(copied.stderr).toContain('from cache');
    expect((await fastPath(args)).answered).toBe(true);
  });

  it('leaves a registry repository without the image to the full command', async () => {
    const args = [repo.dir, '--commit', repo.commit, '--registry', `${registry.host}/elsewhere`, '--no-sign'];
    expect(await fastPath(args)).toMatchObject({ answered: false, stdout: '', stderr: '' });
  });

  it('leaves flags it does not take to the full command, printing nothing (the argument table below has the rest)', async () => {
    const fast = await fastPath([repo.dir, '--commit', repo.commit, '--registry', layout, '--no-cache']);
    expect(fast).toMatchObject({ answered: false, stdout: '', stderr: '' });
  });

  it('leaves errors to the full command, which reports them', async () => {
    const args = [repo.dir, '--commit', 'f'.repeat(40), '--registry', layout];
    expect(await fastPath(args)).toMatchObject({ answered: false, stdout: '', stderr: '' });
    const full = await slipway(args);
    expect(full.code).toBe(2);
    expect(full.stderr).toContain(`commit "${'f'.repeat(40)}" does not exist`);
  });

  // Last: it gives the shared home a signing key.
  it('signs on a hit when a signing key exists, loading the signer only then', async () => {
    const paths = defaultKeyPaths({ SLIPWAY_HOME: home });
    const pair = generateKeyPair();
    await mkdir(paths.dir, { recursive: true });
    await writeFile(paths.privateKeyPath, pair.privateKeyPem, { mode: 0o600 });
    await writeFile(paths.publicKeyPath, pair.publicKeyPem);
    const fast = await fastPath([repo.dir, '--commit', repo.commit, '--registry', layout]);
    expect(fast.answered).toBe(true);
    expect(fast.code).toBe(0);
    expect(fast.stderr).toMatch(/^cache hit: .*\nsigned: SLSA provenance by key slipway, attached as oci:.*:sha256-[a-f0-9]{64}\.att/);
    expect(await attestationLayers(layout)).toBe(1);
  });

  it('reuses that attestation on the next hit instead of signing again, and the image still verifies', async () => {
    const fast = await fastPath([repo.dir, '--commit', repo.commit, '--registry', layout]);
    expect(fast).toMatchObject({ answered: true, code: 0 });
    expect(fast.stderr).toMatch(/^cache hit: .*\nsigned: SLSA provenance by key slipway already attached \((referrer sha256:[a-f0-9]{64}|sha256-[a-f0-9]{64}\.att layer 0)\); not signed again\n/);
    const full = await fullCommand([repo.dir, '--commit', repo.commit, '--registry', layout]);
    expect(full.code).toBe(0);
    expect(full.stderr).toBe(fast.stderr);
    expect(await attestationLayers(layout)).toBe(1);
    expect(await verifiedBy(layout, 'slipway', await readFile(defaultKeyPaths({ SLIPWAY_HOME: home }).publicKeyPath, 'utf8'))).toMatchObject({ ok: true });
  });

  it('signs again on a hit with another key, whose signature the store does not have', async () => {
    const other = generateKeyPair();
    const keyFile = join(tmp, 'other.key');
    await writeFile(keyFile, other.privateKeyPem, { mode: 0o600 });
    await writeFile(join(tmp, 'other.pub'), other.publicKeyPem);
    const fast = await fastPath([repo.dir, '--commit', repo.commit, '--registry', layout, '--key', keyFile]);
    expect(fast).toMatchObject({ answered: true, code: 0 });
    expect(fast.stderr).toMatch(/^cache hit: .*\nsigned: SLSA provenance by key other, attached as /);
    expect(await attestationLayers(layout)).toBe(2);
    expect(await verifiedBy(layout, 'other', other.publicKeyPem)).toMatchObject({ ok: true, provenance: { keyName: 'other' } });
  });

  it('signs again on a hit whose attestations were deleted from the store', async () => {
    const indexFile = join(layout, 'index.json');
    const index = JSON.parse(await readFile(indexFile, 'utf8')) as { manifests: { digest: string }[] };
    const digest = imageDigest();
    index.manifests = index.manifests.filter((m) => m.digest === digest);
    await writeFile(indexFile, JSON.stringify(index));
    expect(await attestationLayers(layout)).toBe(0);
    const fast = await fastPath([repo.dir, '--commit', repo.commit, '--registry', layout]);
    expect(fast).toMatchObject({ answered: true, code: 0 });
    expect(fast.stderr).toMatch(/^cache hit: .*\nsigned: SLSA provenance by key slipway, attached as /);
    expect(await attestationLayers(layout)).toBe(1);
  });
});

let builtDigest: string | undefined;
/** The image every build above made (read once from the layout's single untagged image manifest). */
function imageDigest(): string {
  if (!builtDigest) throw new Error('imageDigest() before attestationLayers() read it');
  return builtDigest;
}

/** How many DSSE envelopes the cosign `.att` manifest of the built image holds (0 without one). */
async function attestationLayers(dir: string): Promise<number> {
  const store = openImageStore(`oci:${dir}`);
  if (!builtDigest) {
    const lookup = await fastPath([repo.dir, '--commit', repo.commit, '--registry', dir, '--no-sign', '--json']);
    builtDigest = (JSON.parse(lookup.stdout) as { digest: string }).digest;
  }
  const att = await store.getManifest(`sha256-${builtDigest.slice(7)}.att`);
  return att ? (JSON.parse(att.bytes.toString('utf8')) as { layers: unknown[] }).layers.length : 0;
}

/** The deploy-time verifier's answer for the built image, trusting one key for any source and branch. */
async function verifiedBy(dir: string, keyName: string, publicKeyPem: string) {
  const { createProvenanceVerifier } = await import('../../lib/provenance/index.js');
  const { BUILDER_ID } = await import('../../builder/version.js');
  return createProvenanceVerifier({ cache: false }).verify({
    repository: `oci:${dir}`,
    digest: imageDigest(),
    service: 'hello',
    policy: { keys: [{ name: keyName, publicKey: `keys/${keyName}.pub` }], builders: [BUILDER_ID], sources: [{ repo: '*', branches: ['*'] }] },
    publicKeys: { [keyName]: publicKeyPem },
  });
}

describe('the arguments the fast path takes', () => {
  it.each([
    [['dir'], { repoArg: 'dir', options: {} }],
    [['--repo', 'r', '--commit=abc', '--registry', 'oci:x', '--branch', 'main', '--json', '--no-sign'], { options: { repo: 'r', commit: 'abc', registry: 'oci:x', branch: 'main', json: true, sign: false } }],
    [['--store=h:5000/x', '--key', 'k.pem', '--keyless', '--sign'], { options: { store: 'h:5000/x', key: 'k.pem', keyless: true, sign: true } }],
  ])('reads %j', (args, expected) => {
    expect(parseFastBuildArgs(args)).toEqual(expected);
  });

  it.each([
    [['a', 'b']],
    [['--repo', 'r', 'dir']],
    [['--commit']],
    [['--commit', '--json']],
    [['--sign', '--no-sign']],
    [['--json=yes']],
    [['-h']],
    [['--help']],
    [['--no-cache']],
    [['--tag', 'v1']],
    [['--envs', '/envs']],
    [['--bogus']],
    [['--json', '--json']],
  ])('leaves %j to the full command', (args) => {
    expect(parseFastBuildArgs(args)).toBeUndefined();
  });
});
