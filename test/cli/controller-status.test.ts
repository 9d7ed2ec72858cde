/**
 * `slipway controller` and `slipway status` as a person runs them: the real CLI, the real provenance
 * verifier and local target, a real environments repo. A digest with no signed provenance is refused
 * with its code, nothing runs, and status shows why.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvRepo, digestOf } from '../support/envrepo.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BAD = digestOf('d');

let home: string;
let repo: EnvRepo;
let controller: ChildProcess | undefined;
let stderr = '';

function cli(...args: string[]) {
  return spawnSync(process.execPath, [join(ROOT, 'bin/slipway.js'), ...args], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '', SLIPWAY_FROM_SOURCE: '1', SLIPWAY_HOME: home },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), 'slipway-cli-home-'));
  repo = EnvRepo.create({ services: { web: { digest: BAD, repository: `oci:${join(home, 'images')}` } } });
});

afterAll(async () => {
  if (controller && controller.exitCode === null) {
    const exited = new Promise((r) => controller!.once('exit', r));
    controller.kill('SIGTERM');
    await exited;
  }
  repo.cleanup();
  rmSync(home, { recursive: true, force: true });
});

describe('slipway controller and slipway status', () => {
  it('refuse a digest without signed provenance, and status shows the refusal code', async () => {
    controller = spawn(process.execPath, [join(ROOT, 'bin/slipway.js'), 'controller', '--repo', repo.dir, '--port', '0'], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', SLIPWAY_FROM_SOURCE: '1', SLIPWAY_HOME: home },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    controller.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const endpoint = join(home, 'controller', 'endpoint');
    for (let i = 0; i < 600 && !(existsSync(endpoint) && stderr.includes('refused NO_ATTESTATION')); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(stderr).toContain('refused NO_ATTESTATION');
    expect(readFileSync(endpoint, 'utf8')).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);

    const table = cli('status');
    expect(table.status).toBe(0);
    const row = table.stdout.split('\n').find((l) => l.startsWith('staging'))!;
    expect(row).toMatch(/^staging\s+web\s+dddddddddddd\s+-\s+-\s+Idle/);
    expect(row).toContain('refused NO_ATTESTATION');

    const json = cli('status', '--json', '--env', 'staging');
    const body = JSON.parse(json.stdout) as { environments: { services: { gate: { code: string } }[] }[] };
    expect(body.environments[0]!.services[0]!.gate.code).toBe('NO_ATTESTATION');

    const bad = cli('status', '--env', 'Not A Name');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('env');
  });
});
