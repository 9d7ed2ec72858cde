/**
 * The README's first command, end to end through the real CLI: init, build + sign, land in staging, the
 * controller on the local target (real processes behind the proxy), a bad canary rolled back by a revert.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

describe('slipway demo', () => {
  it('deploys v1, catches the bad v2 in its canary, reverts it in git and ends back on v1', () => {
    const home = mkdtempSync(join(tmpdir(), 'slipway-demo-home-'));
    try {
      const run = spawnSync(process.execPath, [join(ROOT, 'bin/slipway.js'), 'demo', '--timeout', '50'], {
        cwd: ROOT,
        env: { ...process.env, NODE_OPTIONS: '', SLIPWAY_FROM_SOURCE: '1', SLIPWAY_HOME: home },
        encoding: 'utf8',
        timeout: 58_000,
      });
      expect(run.stderr).not.toContain('slipway demo:');
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/answers \{"service":"hello","version":"1.0.0"/);
      expect(run.stdout).toContain('RolledBack: rolled back');
      expect(run.stdout).toMatch(/Slipway-Reverts: [0-9a-f]{40}/);
      expect(run.stdout).toContain('quarantined in quarantine.yaml: true');
      expect(run.stdout).toContain('demo finished');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
