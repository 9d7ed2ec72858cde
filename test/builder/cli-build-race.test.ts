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
  tmp = await mkdtemp(join(tmpdir(), 'slipway-cli-race-'));
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

describe('slipway build', () => {
  describe('when two processes build the same commit at once', () => {
    it('runs the pipeline in one of them; the other prints the same digest from the cache', async () => {
      const home = join(tmp, 'home-race');
      const out = join(tmp, 'race-layout');
      const [a, b] = await Promise.all([slipway(['build', repo.dir, '--registry', out], home), slipway(['build', repo.dir, '--registry', out], home)]);
      expect([a.code, b.code]).toEqual([0, 0]);
      expect(a.stdout).toBe(b.stdout);
      const built = [a, b].filter((r) => /^built: /m.test(r.stderr));
      const cached = [a, b].filter((r) => /^from cache: /m.test(r.stderr));
      expect([built.length, cached.length]).toEqual([1, 1]);
    });
  });


  describe('with --no-cache', () => {
    it('runs the stages again and prints the same digest', async () => {
      const home = join(tmp, 'home-nocache');
      const out = join(tmp, 'nocache-layout');
      const first = await slipway(['build', repo.dir, '--registry', out], home);
      const again = await slipway(['build', repo.dir, '--registry', out, '--no-cache'], home);
      expect([first.code, again.code]).toEqual([0, 0]);
      expect(again.stdout).toBe(first.stdout);
      expect(again.stderr).toMatch(/^built: /m);
      expect(again.stderr).toMatch(/^logs: .*\/builds\/[a-f0-9]{16}\/logs$/m);
    });
  });
});
