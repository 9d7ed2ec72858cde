import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createServiceRepo, type ServiceRepo } from '../support/fixtures/service-repo.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { resolveStoreArgument } from '../../cli/commands/build.js';

const execFileAsync = promisify(execFile);
const BIN = resolve('bin/slipway.js');

let tmp: string;
let repo: ServiceRepo;
let registry: TestRegistry;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'slipway-cli-build-'));
  repo = await createServiceRepo({ dir: join(tmp, 'hello') });
  registry = await startRegistry();
});
afterAll(async () => {
  await registry?.stop();
  await rm(tmp, { recursive: true, force: true });
});

async function slipway(args: string[], home = join(tmp, 'home')): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: tmp, SLIPWAY_HOME: home, SLIPWAY_FROM_SOURCE: '1' },
      cwd: tmp,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('slipway build', () => {
  describe('when run twice on the same commit', () => {
    it('prints the same repo@digest, the second time from the cache', async () => {
      const store = `${registry.host}/hello`;
      const first = await slipway(['build', repo.dir, '--commit', repo.commit, '--registry', store]);
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(new RegExp(`^${store.replace(/\./g, '\\.')}@sha256:[a-f0-9]{64}\\n$`));
      expect(first.stderr).toMatch(/built: [a-f0-9]{12} \(main\)/);
      expect(first.stderr).toMatch(/lint +ok/);
      expect(first.stderr).toMatch(/test +ok .* 2 shards/);

      const second = await slipway(['build', '--repo', repo.dir, '--commit', repo.commit, '--store', store]);
      expect(second.code).toBe(0);
      expect(second.stdout).toBe(first.stdout);
      expect(second.stderr).toContain('cache hit');
      expect(second.stderr).toContain('from cache');
    });
  });

  describe('with --json', () => {
    it('prints the result with stage results', async () => {
      const out = join(tmp, 'layout');
      const { code, stdout } = await slipway(['build', repo.dir, '--registry', out, '--json']);
      expect(code).toBe(0);
      const result = JSON.parse(stdout);
      expect(result.imageRef).toBe(`oci:${out}@${result.digest}`);
      expect(result.stages.map((s: { name: string; status: string }) => `${s.name}:${s.status}`)).toEqual(['lint:succeeded', 'test:succeeded', 'build:succeeded']);
      expect(result.source.commit).toBe(repo.commit);
    });
  });

});

describe('the --registry argument', () => {
  it.each([
    ['oci:out', 'oci:/w/out'],
    ['./images', 'oci:/w/images'],
    ['/abs/images', 'oci:/abs/images'],
    ['images', 'oci:/w/images'],
    ['127.0.0.1:5000/hello', '127.0.0.1:5000/hello'],
    ['localhost:5000/team/hello', 'localhost:5000/team/hello'],
    ['registry.example.com/hello', 'registry.example.com/hello'],
  ])('reads %s as %s', (value, expected) => {
    expect(resolveStoreArgument(value, '/w')).toBe(expected);
  });
});
