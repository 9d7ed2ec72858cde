/**
 * `slipway controller`'s leader-election flags as a person types them (the real CLI, spawned): what is wrong is
 * refused before anything starts, naming the flag and what to do; --help lists the flags (not the tests-only one).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvRepo } from '../../support/envrepo.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

let home: string;
let repo: EnvRepo;
beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), 'slipway-cli-leader-'));
  repo = EnvRepo.create();
});
afterAll(() => {
  repo?.cleanup();
  if (home) rmSync(home, { recursive: true, force: true });
});

/** Run the CLI to completion (killed after 60 s, so a hang fails with a message instead of hanging jest). */
function run(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/slipway.js'), ...args], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', SLIPWAY_FROM_SOURCE: '1', SLIPWAY_HOME: home, HOME: home, KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      stderr += '\n[killed after 60 s]';
      child.kill('SIGKILL');
    }, 60_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('slipway controller --leader-elect', () => {
  describe('when the flags do not fit together', () => {
    it.concurrent.each([
      [['--leader-elect', '--state', 'file'], '--leader-elect needs --state cluster'],
      [['--state', 'etcd'], '--state etcd: expected file or cluster'],
      [['--leader-elect', '--shards', '0'], '--shards 0 is not a whole number from 1 to 1024'],
      [['--leader-elect', '--replicas', 'two'], '--replicas two is not a whole number'],
      [['--namespace', 'slipway-system'], '--namespace only applies with --leader-elect or --state cluster'],
      [['--state', 'cluster', '--once'], '--once runs a single pass on file state'],
      [['--leader-elect', '--lease-timing', '2000,4000,500'], 'needs retry period < renew deadline < lease duration'],
    ])('refuses %j before starting anything', async (flags, message) => {
      const result = await run('controller', '--repo', repo.dir, '--port', '0', ...flags);
      expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 2, stderr: expect.stringContaining(message) });
      expect(result.stderr).not.toMatch(/\n\s+at /);
    });
  });

  it('says where to find the cluster when there is no kubeconfig and no service account', async () => {
    const result = await run('controller', '--repo', repo.dir, '--port', '0', '--leader-elect');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('set KUBECONFIG, or run it in a pod with a service account');
  });

  it('lists the flags in --help, without the tests-only lease timing', async () => {
    const result = await run('controller', '--help');
    for (const flag of ['--leader-elect', '--namespace <ns>', '--shards <n>', '--replicas <n>', '--identity <id>', '--state <file|cluster>']) expect(result.stdout).toContain(flag);
    expect(result.stdout).not.toContain('--lease-timing');
  });
});
