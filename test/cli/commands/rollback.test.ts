/** `slipway rollback` run as a person runs it: the real CLI on a real repository, checked with git. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLocalRollback } from '../../../lib/rollback/index.js';
import fs from 'node:fs';
import { DIGEST, standardHistory, TestRepo } from '../../lib/rollback/repo.js';
import { startGitHttp } from '../../support/git-http.js';

const run = promisify(execFile);
const bin = join(process.cwd(), 'bin', 'slipway.js');

let repo: TestRepo;
let home: string;
beforeEach(() => {
  repo = new TestRepo();
  home = mkdtempSync(join(tmpdir(), 'slipway-home-'));
});
afterEach(() => {
  repo.cleanup();
  rmSync(home, { recursive: true, force: true });
});

async function slipway(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { env: { ...process.env, SLIPWAY_FROM_SOURCE: '1', SLIPWAY_HOME: home }, cwd: process.cwd(), timeout: 50_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string; killed?: boolean; signal?: string };
    // A CLI that outlived its timeout is killed: say so, rather than leave a bare `code: null` to puzzle over.
    const killed = e.killed ? `\n[slipway ${args.join(' ')} was killed with ${e.signal} after 50 s]` : '';
    return { code: e.code, stdout: e.stdout, stderr: `${e.stderr}${killed}` };
  }
}

describe('slipway rollback <service> --env E', () => {
  it('makes the same revert commit the controller makes on a breach', async () => {
    const { bump } = standardHistory(repo);
    const running = slipway('rollback', 'checkout', '--env', 'staging', '--envs', repo.dir, '--actor', 'pat', '--reason', 'checkout 500s after deploy');

    // The controller's path on an identical history (its own repository, made while the CLI starts) produces the
    // same change and message.
    const twin = new TestRepo();
    try {
      standardHistory(twin);
      const controller = await createLocalRollback({ fs, dir: twin.dir }).revert({
        environment: 'staging',
        service: 'checkout',
        badDigest: DIGEST.b,
        reason: 'checkout 500s after deploy',
        actor: 'pat',
        quarantine: true,
      });
      const out = await running;
      expect(out.stderr).toBe('');
      expect(out.code).toBe(0);
      expect(out.stdout).toContain(`rolled back checkout in staging: ${DIGEST.b} -> ${DIGEST.a}`);
      const cliCommit = repo.head();

      const strip = (text: string) => text.replace(/^\s+at: .*$/m, '');
      expect(strip(repo.git('show', `${cliCommit}:quarantine.yaml`))).toBe(strip(twin.git('show', `${controller.commit}:quarantine.yaml`)));
      expect(repo.git('show', `${cliCommit}:staging/services/checkout.yaml`)).toBe(twin.git('show', `${controller.commit}:staging/services/checkout.yaml`));
      expect(repo.git('log', '-1', '--format=%B', cliCommit)).toBe(twin.git('log', '-1', '--format=%B', controller.commit));
    } finally {
      twin.cleanup();
    }
    expect(repo.git('log', '-1', '--format=%(trailers:key=Slipway-Reverts,valueonly)').trim()).toBe(bump);
    expect(repo.git('log', '-1', '--format=%(trailers:key=Slipway-Rollback,valueonly)').trim()).toBe('staging/checkout by pat');
    expect(repo.git('status', '--porcelain')).toBe('');
  });

  it('prints JSON with --json and skips the quarantine with --no-quarantine', async () => {
    const { bump } = standardHistory(repo);
    const out = await slipway('rollback', 'checkout', '--env', 'staging', '--envs', repo.dir, '--json', '--no-quarantine');
    expect(out.code).toBe(0);
    const result = JSON.parse(out.stdout) as Record<string, unknown>;
    expect(result).toMatchObject({ environment: 'staging', service: 'checkout', badDigest: DIGEST.b, restoredDigest: DIGEST.a, revertedCommit: bump, quarantined: false, explicit: false });
    expect(repo.git('ls-tree', '--name-only', 'HEAD')).not.toContain('quarantine.yaml');
  });

  it('rolls back an environments repository behind an http(s) URL: the revert is pushed to it, not forced', async () => {
    standardHistory(repo);
    const before = repo.head();
    repo.git('config', 'http.receivepack', 'true');
    repo.git('config', 'receive.denyCurrentBranch', 'updateInstead');
    const server = await startGitHttp(repo.root);
    try {
      const out = await slipway('rollback', 'checkout', '--env', 'staging', '--envs', `${server.url}/envs/.git`, '--actor', 'pat', '--reason', 'checkout 500s after deploy');
      expect(out.stderr).toBe('');
      expect(out.code).toBe(0);
      expect(out.stdout).toContain(`rolled back checkout in staging: ${DIGEST.b} -> ${DIGEST.a}`);
      expect(repo.git('log', '-1', '--format=%P', 'main').trim()).toBe(before.trim());
      expect(repo.git('show', 'main:staging/services/checkout.yaml')).toContain(DIGEST.a);
      expect(repo.git('show', 'main:quarantine.yaml')).toContain(DIGEST.b);
      expect(server.requests.some((r) => r.startsWith('POST') && r.includes('git-receive-pack'))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('says there is nothing to do when run twice', async () => {
    standardHistory(repo);
    await slipway('rollback', 'checkout', '--env', 'staging', '--envs', repo.dir);
    const head = repo.head();
    const again = await slipway('rollback', 'checkout', '--env', 'staging', '--envs', repo.dir, '--digest', DIGEST.b);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing to do');
    expect(repo.head()).toBe(head);
  });

  it.each([
    ['an unknown service', ['rollback', 'ghost', '--env', 'staging'], /staging\/services\/ghost\.yaml does not exist/],
    ['a directory that is not a repository', ['rollback', 'checkout', '--env', 'staging', '--envs', tmpdir()], /is not a git repository; pass the environments repository with --envs/],
  ])('refuses %s with a clear message and no stack trace', async (_name, args, message) => {
    standardHistory(repo);
    const withEnvs = args.includes('--envs') ? args : [...args, '--envs', repo.dir];
    const out = await slipway(...withEnvs);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(message);
    expect(out.stderr).not.toMatch(/\n\s+at /);
  });
});
