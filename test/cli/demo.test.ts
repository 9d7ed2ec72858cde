/**
 * The README's first command, end to end through the real CLI: init, build + sign, land in staging, the
 * controller on the local target for staging and production (real processes behind the proxies), promotion to
 * production through a proposal, an approval and a merge (with `--frozen`, first refused by a freeze window in
 * force), a good version through canaries in both environments, a bad one caught in staging and reverted.
 * One run of the demo; every assertion reads its output or the environments repo it keeps.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
/** The demo takes about 45 s on a quiet machine; a loaded CI machine gets far more before anyone gives up. */
const DEMO_TIMEOUT_S = 200;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function runDemo(args: string[], home: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/slipway.js'), 'demo', ...args], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', SLIPWAY_FROM_SOURCE: '1', SLIPWAY_HOME: home, TMPDIR: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    // The demo has its own --timeout; this only guards against a hang of the process itself.
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`slipway demo did not exit within ${DEMO_TIMEOUT_S + 30} s; output so far:\n${stdout}\n${stderr}`));
    }, (DEMO_TIMEOUT_S + 30) * 1000);
    child.on('error', (err) => {
      clearTimeout(guard);
      reject(err);
    });
    child.on('close', (status) => {
      clearTimeout(guard);
      resolve({ status, stdout, stderr });
    });
  });
}

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

describe('slipway demo', () => {
  let home: string;
  let run: Run;
  let kept: string;

  beforeAll(async () => {
    // TMPDIR points into this temp dir, so the repos the demo keeps are removed with it.
    home = mkdtempSync(join(tmpdir(), 'slipway-demo-test-'));
    run = await runDemo(['--frozen', '--timeout', String(DEMO_TIMEOUT_S)], home);
    kept = /in (\S+slipway-demo-\w+)\n/.exec(run.stdout)?.[1] ?? '';
  }, (DEMO_TIMEOUT_S + 60) * 1000);

  afterAll(() => {
    rmSync(home, { recursive: true, force: true });
  });

  it('finishes with exit status 0 and no error', () => {
    // Everything the demo printed, so a failure on a loaded CI machine says which step went wrong.
    if (run.status !== 0 || run.stderr.includes('slipway demo:')) throw new Error(`slipway demo exited ${run.status}:\n${run.stdout}\n${run.stderr}`);
    expect(run.stderr).not.toContain('slipway demo:');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('demo finished in');
  });

  it('prints one line per step, each with the elapsed time', () => {
    const steps = run.stdout.split('\n').filter((l) => /^\[\s*\d+\.\d+s\] /.test(l));
    expect(steps.length).toBeGreaterThan(20);
    const times = steps.map((l) => Number(/^\[\s*(\d+\.\d+)s\]/.exec(l)![1]));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  describe('staging', () => {
    it('answers v1 through its proxy on the stable track', () => {
      expect(run.stdout).toMatch(/staging answers through its proxy: GET http:\/\/127\.0\.0\.1:\d+\/ → 200 \{"service":"hello","version":"1\.0\.0"[^\n]*\[track stable\]/);
    });

    it('sends a request forced to the canary track to v2 during its canary', () => {
      expect(run.stdout).toMatch(/\(x-slipway-track: canary\) → 200 \{"service":"hello","version":"2\.0\.0"[^\n]*\[track canary\]/);
    });

    it('catches the bad v3 in its canary, reverts it in git and quarantines its digest', () => {
      const v3 = /slipway build: hello 3\.0\.0[^\n]*→ ([0-9a-f]{12})/.exec(run.stdout)?.[1];
      expect(v3).toBeDefined();
      expect(run.stdout).toContain(`staging/hello: RolledBack: rolled back ${v3}`);
      expect(run.stdout).toMatch(/Slipway-Reverts: [0-9a-f]{40}/);
      expect(run.stdout).toContain(`${v3} quarantined: true`);
    });
  });

  describe('production', () => {
    it('is promoted by a proposal, an approval by someone other than the author, and a merge', () => {
      expect(run.stdout).toMatch(/\$ slipway promote hello --from staging --to production {3}→ proposal production\/hello-[0-9a-f]{12} \(hello 1\.0\.0 [0-9a-f]{12}; needs 1 approval/);
      expect(run.stdout).toMatch(/\$ slipway approve production\/hello-[0-9a-f]{12} --as "Riley Reviewer <riley@localhost>" {3}→ approvals: Riley Reviewer/);
      expect(run.stdout).toMatch(/\$ slipway merge production\/hello-[0-9a-f]{12} {3}→ main at [0-9a-f]{7}: production wants hello 2\.0\.0/);
    });

    it('refuses the merge inside a freeze window, and says how the demo goes on', () => {
      expect(run.stdout).toMatch(/→ refused \(FROZEN\): production is frozen by "demo-freeze"/);
      expect(run.stdout).toMatch(/the demo ends that window in its own repo \(commit [0-9a-f]{7}, see git log\)/);
    });

    it('rolls v2 out through a canary with analysis, then runs the good digest and answers 2.0.0 through its proxy', () => {
      const v2 = /slipway build: hello 2\.0\.0 → ([0-9a-f]{12})/.exec(run.stdout)?.[1];
      expect(v2).toBeDefined();
      expect(run.stdout).toContain(`production/hello: RolloutStarted: starting canary rollout of ${v2}`);
      expect(run.stdout).toMatch(/production\/hello: AnalysisVerdict: canary analysis 2\/2: pass/);
      expect(run.stdout).toContain(`production/hello: Completed: ${v2} is stable`);
      expect(run.stdout).toMatch(new RegExp(`production runs ${v2}: GET http://127\\.0\\.0\\.1:\\d+/ → 200 \\{"service":"hello","version":"2\\.0\\.0"[^\\n]*\\[track stable\\]`));
      expect(run.stdout).toContain(`production still runs ${v2} (2.0.0)`);
    });
  });

  describe('the environments repo it keeps', () => {
    it('names v2 in production and staging on main, and v3 in quarantine.yaml (read with the git CLI)', () => {
      expect(existsSync(join(kept, 'environments', '.git'))).toBe(true);
      const envs = join(kept, 'environments');
      const v2 = /slipway build: hello 2\.0\.0 → ([0-9a-f]{12})/.exec(run.stdout)![1]!;
      const v3 = /slipway build: hello 3\.0\.0[^\n]*→ ([0-9a-f]{12})/.exec(run.stdout)![1]!;
      expect(git(envs, 'show', 'main:production/services/hello.yaml')).toMatch(new RegExp(`digest: sha256:${v2}[0-9a-f]{52}`));
      expect(git(envs, 'show', 'main:staging/services/hello.yaml')).toMatch(new RegExp(`digest: sha256:${v2}[0-9a-f]{52}`));
      expect(git(envs, 'show', 'main:quarantine.yaml')).toContain(`sha256:${v3}`);
      expect(git(envs, 'log', '--format=%s', 'main')).toContain('demo: end the freeze window(s) demo-freeze of production early, so this demo run can finish');
      expect(readFileSync(join(envs, 'production', 'freeze.yaml'), 'utf8')).toContain('sunday-maintenance');
    });

    it('ends with what to try next, with concrete commands for those repos', () => {
      const next = run.stdout.slice(run.stdout.indexOf('Try next'));
      expect(next).toContain(`export SLIPWAY_HOME=${join(kept, 'home')} E=${join(kept, 'environments')} S=${join(kept, 'hello')}`);
      expect(next).toMatch(/slipway\.js merge <the proposal it printed> --repo \$E/);
      expect(next).toMatch(/git -C \$E revert --no-edit -m 1 [0-9a-f]{12}/);
      expect(next).toMatch(/slipway\.js freeze status --repo \$E/);
    });
  });
});
