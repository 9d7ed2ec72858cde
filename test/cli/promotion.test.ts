import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalGitProvider, type Verifier } from '../../lib/gitprovider/index.js';
import { digestOf, makeEnvRepo, type TestRepo } from '../support/promotion-repo.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NEW = digestOf('ab');
const FREEZE = [
  'apiVersion: slipway.dev/v1',
  'kind: FreezeWindows',
  'spec:',
  '  windows:',
  '    - name: year-end',
  '      reason: holidays',
  "      start: '2026-12-20T00:00'",
  "      end: '2027-01-04T00:00'",
  '      timeZone: Europe/Berlin',
  '',
].join('\n');

/** Signed-off in the library call that sets the scene; the CLI under test never sees this verifier. */
const sceneVerifier: Verifier = async (req) => ({ ok: true, provenance: { digest: req.digest, builderId: 'b', sourceRepo: 'r', sourceRef: 'refs/heads/main', sourceCommit: 'c'.repeat(40), keyName: 'builder' } });

describe('slipway promotion commands', () => {
  let r: TestRepo;
  let home: string;
  let proposalId: string;

  function slipway(...args: string[]) {
    const result = spawnSync('node', [join(root, 'bin', 'slipway.js'), ...args], {
      cwd: r.work,
      env: { ...process.env, SLIPWAY_FROM_SOURCE: '1', SLIPWAY_HOME: home, SLIPWAY_ACTOR: 'Casey <casey@example.com>' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'slipway-home-'));
    r = makeEnvRepo({ bare: true, productionApprovals: 1, productionFreeze: FREEZE });
    const provider = new LocalGitProvider({ repo: r.repo, verify: sceneVerifier, clock: () => new Date('2026-11-23T10:00:00Z') });
    const p = await provider.propose({ environment: 'production', service: 'web', digest: NEW, repository: 'localhost:5000/web', author: { name: 'Blake', email: 'blake@example.com' } });
    proposalId = p.id;
  });
  afterAll(() => {
    r.cleanup();
    rmSync(home, { recursive: true, force: true });
  });

  it('proposals lists the open proposal with its author', () => {
    const out = slipway('proposals', '--repo', r.repo);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(new RegExp(`^open\\s+${proposalId}\\s+${NEW}\\s+by Blake\\n$`));
  });

  it('approve refuses the author with exit 1 and records another person as a trailer', () => {
    const self = slipway('approve', proposalId, '--repo', r.repo, '--as', 'Blake <blake@example.com>');
    expect(self.code).toBe(1);
    expect(self.stderr).toContain('Blake wrote proposal');
    const ok = slipway('approve', proposalId, '--repo', r.repo, '--as', 'Alex <alex@example.com>');
    expect(ok.stdout).toBe(`approved ${proposalId}; approvals: Alex\n`);
    expect(r.git(['log', '-1', '--format=%(trailers:key=Slipway-Approved-By,valueonly)', `slipway/${proposalId}`], r.repo)).toBe('Alex <alex@example.com>');
  });

  it('merge during the freeze exits 1 naming the window and its end, and writes the refusal to the audit log', () => {
    const out = slipway('merge', proposalId, '--repo', r.repo, '--at', '2026-12-24T18:00:00+01:00');
    expect(out.code).toBe(1);
    expect(out.stderr).toBe(`slipway merge: production is frozen by "year-end" (holidays) until 2027-01-04T00:00:00+01:00; merge after that, or pass --override "<reason>"\n`);
    const audit = readFileSync(join(home, 'audit', 'promotion.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(audit.at(-1)).toMatchObject({ action: 'refused', code: 'FROZEN', proposal: proposalId, actor: 'Casey' });
    expect(audit.map((e) => e.action)).toEqual(['refused', 'approved', 'refused']);
  });

  it('freeze status shows the window in force and exits 1, or the next one and exits 0', () => {
    const frozen = slipway('freeze', 'status', '--repo', r.repo, '--env', 'production', '--at', '2026-12-24T18:00:00+01:00');
    expect(frozen.code).toBe(1);
    expect(frozen.stdout).toBe('production: frozen by "year-end" (holidays) until 2027-01-04T00:00:00+01:00\n');
    const open = slipway('freeze', 'status', '--repo', r.repo, '--at', '2026-12-01T00:00:00Z', '--json');
    expect(open.code).toBe(0);
    const json = JSON.parse(open.stdout);
    expect(json.environments.map((e: { environment: string; frozen: boolean }) => [e.environment, e.frozen])).toEqual([
      ['staging', false],
      ['production', false],
    ]);
    expect(json.environments[1].next).toMatchObject({ name: 'year-end', start: '2026-12-19T23:00:00.000Z' });
  });

  it('names what is wrong with bad input and exits 2', () => {
    const out = slipway('merge', 'production/nope-123', '--repo', r.repo);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain('no proposal "production/nope-123"');
  });
});
