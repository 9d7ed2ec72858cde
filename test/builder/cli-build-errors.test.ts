import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createServiceRepo, type ServiceRepo } from '../support/fixtures/service-repo.js';

const execFileAsync = promisify(execFile);
const BIN = resolve('bin/slipway.js');

let tmp: string;
let repo: ServiceRepo;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'slipway-cli-errors-'));
  repo = await createServiceRepo({ dir: join(tmp, 'hello') });
});
afterAll(async () => {
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

describe('slipway build refusing', () => {
  describe('when a stage fails', () => {
    it('exits 1 and names the stage with its last log lines', async () => {
      const broken = await createServiceRepo({ dir: join(tmp, 'broken'), files: { 'server.js': 'this is not javascript(\n' } });
      const { code, stdout, stderr } = await slipway(['build', broken.dir, '--registry', join(tmp, 'broken-out')]);
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr).toContain('slipway build: stage "lint" failed with exit code 1');
      expect(stderr).toContain('| server.js:');
    });
  });

  describe('when the commit does not exist', () => {
    it('exits 2 with a clear message and no stack trace', async () => {
      const { code, stderr } = await slipway(['build', repo.dir, '--commit', 'nope', '--registry', join(tmp, 'x')]);
      expect(code).toBe(2);
      expect(stderr).toBe(`slipway build: commit "nope" does not exist in ${repo.dir} (check the sha, or fetch it first)\n`);
    });
  });
});

