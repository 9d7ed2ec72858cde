import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileAuditLog, LocalGitProvider, type Verifier } from '../../../lib/gitprovider/index.js';
import type { DigestChange } from '../../../lib/gitprovider/index.js';
import type { VerificationResult } from '../../../lib/provenance/types.js';
import { digestOf, makeEnvRepo, OLD_DIGEST, type TestRepo } from '../../support/promotion-repo.js';

const NEW = digestOf('ab');
const NEWER = digestOf('cd');
const SOURCE = { repo: 'https://git.example/shop/web', ref: 'refs/heads/main', commit: 'f'.repeat(40) };

/** Verification outcome chosen per test: the provider must ask and obey it. */
function verifier(result: VerificationResult = { ok: true, provenance: { digest: NEW, builderId: 'b', sourceRepo: SOURCE.repo, sourceRef: SOURCE.ref, sourceCommit: SOURCE.commit, keyName: 'builder' } }) {
  const asked: string[] = [];
  const verify: Verifier = async (req) => {
    asked.push(`${req.repository}@${req.digest}`);
    return result;
  };
  return { verify, asked };
}

function change(overrides: Partial<DigestChange> = {}): DigestChange {
  return {
    environment: 'staging',
    service: 'web',
    digest: NEW,
    repository: 'localhost:5000/web',
    source: SOURCE,
    provenance: `localhost:5000/web:sha256-${'ab'.repeat(32)}.att`,
    author: { name: 'slipway-builder', email: 'builder@example.com' },
    ...overrides,
  };
}

const clock = () => new Date('2026-11-23T10:00:00Z');

async function expectRefusal(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code });
  if (message) await expect(promise).rejects.toThrow(message);
}

describe('local git provider', () => {
  let r: TestRepo;
  afterEach(() => r?.cleanup());

  describe('proposing a digest to a bare environments repository', () => {
    let provider: LocalGitProvider;
    beforeEach(() => {
      r = makeEnvRepo({ bare: true });
      provider = new LocalGitProvider({ repo: r.repo, verify: verifier().verify, clock });
    });

    it('creates slipway/<env>/<service>-<short digest> with one commit whose trailers git reads', async () => {
      const p = await provider.propose(change());
      expect(p).toMatchObject({ id: `staging/web-${'ab'.repeat(6)}`, state: 'open', branch: `slipway/staging/web-${'ab'.repeat(6)}`, author: 'slipway-builder' });
      expect(r.git(['rev-list', '--count', `main..${p.branch}`], r.repo)).toBe('1');
      const trailers = r.git(['log', '-1', '--format=%(trailers:only,unfold)', p.branch], r.repo);
      expect(trailers).toContain(`Slipway-Image: localhost:5000/web@${NEW}`);
      expect(trailers).toContain(`Slipway-Provenance: localhost:5000/web:sha256-${'ab'.repeat(32)}.att`);
      expect(trailers).toContain(`Slipway-Source-Commit: ${SOURCE.commit}`);
      expect(trailers).toContain(`Slipway-Previous-Digest: ${OLD_DIGEST}`);
      expect(r.git(['diff', '--numstat', 'main', p.branch], r.repo)).toBe('1\t1\tstaging/services/web.yaml');
      expect(r.git(['show', `${p.branch}:staging/services/web.yaml`], r.repo)).toContain('# where the builder pushes');
      r.git(['fsck', '--strict', '--no-dangling'], r.repo);
    });

    it('returns the same open proposal when the digest is proposed again', async () => {
      const first = await provider.propose(change());
      const again = await provider.propose(change());
      expect(again.headCommit).toBe(first.headCommit);
      expect(await provider.list({ state: 'open' })).toHaveLength(1);
    });

    it('reports already-updated and creates no branch when main already runs the digest', async () => {
      const p = await provider.propose(change({ digest: OLD_DIGEST }));
      expect(p).toMatchObject({ alreadyUpdated: true, state: 'merged' });
      expect(r.git(['branch', '--list', 'slipway/*'], r.repo)).toBe('');
    });

    it('creates a missing service file from templates/service.yaml', async () => {
      const p = await provider.propose(change({ service: 'checkout', repository: 'localhost:5000/checkout' }));
      const text = r.git(['show', `${p.branch}:staging/services/checkout.yaml`], r.repo);
      expect(text).toContain('# Created by Slipway from templates/service.yaml');
      expect(text).toContain('  name: checkout');
      expect(text).toContain(`    digest: ${NEW}`);
    });

    it('refuses to propose a bump that leaves the service file invalid, naming file, line and field', async () => {
      const file = join(r.work, 'staging/services/web.yaml');
      writeFileSync(file, readFileSync(file, 'utf8').replace('port: 8080', 'port: eighty'));
      r.git(['commit', '-q', '-am', 'A person breaks the port by hand']);
      r.git(['push', '-q', 'origin', 'main']);
      await expectRefusal(provider.propose(change()), 'INVALID_SERVICE_FILE', /staging\/services\/web\.yaml:11:\d+ spec\.port/);
      expect(r.git(['branch', '--list', 'slipway/*'], r.repo)).toBe('');
    });

    it('refuses an environment slipway.yaml does not list', async () => {
      await expectRefusal(provider.propose(change({ environment: 'qa' })), 'UNKNOWN_ENVIRONMENT', /staging, production/);
    });
  });

  describe('merging a proposal', () => {
    it('puts a two-parent merge commit on main that git fsck accepts and writes the audit log', async () => {
      r = makeEnvRepo({ bare: true });
      const audit = join(r.root, 'audit.jsonl');
      const { verify, asked } = verifier();
      const provider = new LocalGitProvider({ repo: r.repo, verify, clock, audit: fileAuditLog(audit) });
      const p = await provider.propose(change());
      const { mergeCommit, proposal } = await provider.merge(p.id, { actor: 'Robin <robin@example.com>' });
      expect(proposal.state).toBe('merged');
      expect(asked).toEqual([`localhost:5000/web@${NEW}`]);
      expect(r.git(['rev-parse', 'main'], r.repo)).toBe(mergeCommit);
      expect(r.git(['log', '-1', '--format=%P', 'main'], r.repo).split(' ')).toEqual([expect.any(String), p.headCommit]);
      expect(r.git(['show', 'main:staging/services/web.yaml'], r.repo)).toContain(`digest: ${NEW}`);
      expect(r.git(['log', '-1', '--format=%an|%(trailers:key=Slipway-Merged-By,valueonly)', 'main'], r.repo)).toBe('Robin|Robin <robin@example.com>');
      expect(r.git(['branch', '--merged', 'main', '--list', 'slipway/*'], r.repo)).toContain(p.branch);
      r.git(['fsck', '--strict', '--no-dangling'], r.repo);
      expect((await provider.status(p.id)).state).toBe('merged');
      const events = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(events.map((e) => e.action)).toEqual(['proposed', 'merged']);
      expect(events[1]).toMatchObject({ actor: 'Robin', digest: NEW, commit: mergeCommit, provider: 'local' });
    });

    it('updates the checked-out working tree of a non-bare repository and leaves it clean', async () => {
      r = makeEnvRepo();
      const provider = new LocalGitProvider({ repo: r.repo, verify: verifier().verify, clock });
      const p = await provider.propose(change());
      await provider.merge(p.id, { actor: 'robin' });
      expect(r.git(['status', '--porcelain'])).toBe('');
      expect(readFileSync(join(r.work, 'staging/services/web.yaml'), 'utf8')).toContain(`digest: ${NEW}`);
    });

    it('never overwrites a person\'s uncommitted edit of the same file in the working tree', async () => {
      r = makeEnvRepo();
      const provider = new LocalGitProvider({ repo: r.repo, verify: verifier().verify, clock });
      const p = await provider.propose(change());
      const file = join(r.work, 'staging/services/web.yaml');
      writeFileSync(file, readFileSync(file, 'utf8').replace('port: 8080', 'port: 9090'));
      await provider.merge(p.id, { actor: 'robin' });
      expect(readFileSync(file, 'utf8')).toContain('port: 9090');
      expect(r.git(['show', 'main:staging/services/web.yaml'])).toContain(`digest: ${NEW}`);
    });

    it('is recognised as merged when a person merges the branch with git and pushes', async () => {
      r = makeEnvRepo({ bare: true });
      const provider = new LocalGitProvider({ repo: r.repo, verify: verifier().verify, clock });
      const p = await provider.propose(change());
      r.git(['fetch', '-q', 'origin']);
      r.git(['merge', '-q', '--no-ff', '-m', 'Merge by hand', `origin/${p.branch}`]);
      r.git(['push', '-q', 'origin', 'main']);
      expect((await provider.status(p.id)).state).toBe('merged');
      expect(r.git(['show', 'main:staging/services/web.yaml'], r.repo)).toContain(`digest: ${NEW}`);
    });

    it('refuses a digest whose provenance does not verify, with the verifier reason', async () => {
      r = makeEnvRepo({ bare: true });
      const provider = new LocalGitProvider({ repo: r.repo, verify: verifier({ ok: false, code: 'UNTRUSTED_BUILDER', message: 'builder x is not trusted' }).verify, clock });
      const p = await provider.propose(change());
      await expectRefusal(provider.merge(p.id, { actor: 'robin' }), 'NOT_VERIFIED', /UNTRUSTED_BUILDER.*builder x is not trusted/);
      expect(r.git(['rev-list', '--count', 'main'], r.repo)).toBe('1');
    });
  });

  describe('when main moves while a merge is being written', () => {
    it('rebuilds the merge on the new main and keeps the other commit (never forced)', async () => {
      r = makeEnvRepo({ bare: true, services: ['web', 'api'] });
      let moved = 0;
      const provider = new LocalGitProvider({
        repo: r.repo,
        verify: verifier().verify,
        clock,
        beforeRefUpdate: () => {
          if (moved++ > 0) return;
          // A person bumps the replicas of the same file and pushes, between Slipway's read and its ref update.
          r.git(['pull', '-q', '--ff-only']);
          const file = join(r.work, 'staging/services/web.yaml');
          writeFileSync(file, readFileSync(file, 'utf8').replace('replicas: 2', 'replicas: 5'));
          r.git(['commit', '-q', '-am', 'More replicas']);
          r.git(['push', '-q', 'origin', 'main']);
        },
      });
      const p = await provider.propose(change());
      const { mergeCommit } = await provider.merge(p.id, { actor: 'robin' });
      expect(moved).toBe(2);
      const personCommit = r.git(['rev-parse', 'HEAD']);
      expect(r.git(['merge-base', '--is-ancestor', personCommit, mergeCommit], r.repo)).toBe('');
      const text = r.git(['show', 'main:staging/services/web.yaml'], r.repo);
      expect(text).toContain('replicas: 5 # two is enough here');
      expect(text).toContain(`digest: ${NEW}`);
      r.git(['fsck', '--strict', '--no-dangling'], r.repo);
    });
  });

  describe('two proposals for the same service and environment', () => {
    it('supersedes the older one, closing it with a note kept in git', async () => {
      r = makeEnvRepo({ bare: true });
      const provider = new LocalGitProvider({ repo: r.repo, verify: verifier().verify, clock });
      const [older, other] = await Promise.all([provider.propose(change()), provider.propose(change({ environment: 'production' }))]);
      const newer = await provider.propose(change({ digest: NEWER }));
      expect((await provider.status(older.id)).state).toBe('superseded');
      expect((await provider.status(other.id)).state).toBe('open');
      expect((await provider.status(newer.id)).state).toBe('open');
      expect(r.git(['branch', '--list', older.branch], r.repo)).toBe('');
      expect(r.git(['log', '-1', '--format=%s|%(trailers:key=Slipway-Superseded-By,valueonly)', `refs/slipway/closed/${older.id}`], r.repo)).toBe(
        `Superseded by ${newer.id}|${newer.id}`,
      );
      await expectRefusal(provider.merge(older.id, { actor: 'robin' }), 'NOT_OPEN', /superseded/);
      expect((await provider.list({ environment: 'staging' })).map((p) => `${p.id}:${p.state}`)).toEqual([
        `${older.id}:superseded`,
        `${newer.id}:open`,
      ]);
    });
  });

  describe('two proposals for the same file made at the same moment', () => {
    it('leaves exactly one open and the other superseded by it', async () => {
      r = makeEnvRepo({ bare: true });
      const a = new LocalGitProvider({ repo: r.repo, verify: verifier().verify, clock });
      const b = new LocalGitProvider({ repo: r.repo, verify: verifier().verify, clock });
      await Promise.all([a.propose(change()), b.propose(change({ digest: NEWER }))]);
      const states = (await a.list({ environment: 'staging', service: 'web' })).map((p) => p.state).sort();
      expect(states).toEqual(['open', 'superseded']);
      const survivor = (await a.list({ state: 'open' }))[0]!;
      const loser = (await a.list({ state: 'superseded' }))[0]!;
      expect(r.git(['log', '-1', '--format=%(trailers:key=Slipway-Superseded-By,valueonly)', `refs/slipway/closed/${loser.id}`], r.repo)).toBe(survivor.id);
      r.git(['fsck', '--strict', '--no-dangling'], r.repo);
    });
  });

  describe('in an environment that requires two approvals', () => {
    let provider: LocalGitProvider;
    beforeEach(() => {
      r = makeEnvRepo({ bare: true, productionApprovals: 2 });
      provider = new LocalGitProvider({ repo: r.repo, verify: verifier().verify, clock });
    });

    it('refuses the merge until two people other than the author approved', async () => {
      const p = await provider.propose(change({ environment: 'production' }));
      await expectRefusal(provider.merge(p.id, { actor: 'robin' }), 'APPROVALS_MISSING', /needs 2 approval\(s\).*has 0/);
      await provider.approve(p.id, 'Alice <alice@example.com>');
      await provider.approve(p.id, 'alice');
      await expectRefusal(provider.merge(p.id, { actor: 'robin' }), 'APPROVALS_MISSING', /has 1 \(Alice\)/);
      const approved = await provider.approve(p.id, 'Bob <bob@example.com>');
      expect(approved.approvals).toEqual(['Alice', 'Bob']);
      const { mergeCommit } = await provider.merge(p.id, { actor: 'robin' });
      expect(r.git(['log', '--format=%(trailers:key=Slipway-Approved-By,valueonly,separator=%x2C)', `${mergeCommit}^1..${p.branch}`], r.repo).split('\n').filter(Boolean)).toEqual([
        'Bob <bob@example.com>',
        'Alice <alice@example.com>',
      ]);
      expect(r.git(['log', '-1', '--format=%(trailers:key=Slipway-Approved-By,valueonly,separator=%x2C)', mergeCommit], r.repo)).toBe('Alice,Bob');
    });

    it('does not let the author approve their own proposal', async () => {
      const p = await provider.propose(change({ environment: 'production' }));
      await expectRefusal(provider.approve(p.id, 'slipway-builder'), 'SELF_APPROVAL', /cannot approve/);
      expect(r.git(['rev-list', '--count', `main..${p.branch}`], r.repo)).toBe('1');
    });
  });

  describe('during a freeze window', () => {
    const freeze = [
      'apiVersion: slipway.dev/v1',
      'kind: FreezeWindows',
      'spec:',
      '  windows:',
      '    - name: black-friday',
      '      reason: peak traffic',
      "      start: '2026-11-23T00:00'",
      "      end: '2026-11-30T09:00'",
      '      timeZone: Europe/Berlin',
      '',
    ].join('\n');
    let provider: LocalGitProvider;
    beforeEach(() => {
      r = makeEnvRepo({ bare: true, productionFreeze: freeze });
      provider = new LocalGitProvider({ repo: r.repo, verify: verifier().verify, clock });
    });

    it('refuses the merge with the window name and its end time', async () => {
      const p = await provider.propose(change({ environment: 'production' }));
      await expectRefusal(provider.merge(p.id, { actor: 'robin' }), 'FROZEN', /"black-friday" \(peak traffic\) until 2026-11-30T09:00:00\+01:00/);
    });

    it('merges with an override and records the reason in the merge commit', async () => {
      const p = await provider.propose(change({ environment: 'production' }));
      const { mergeCommit } = await provider.merge(p.id, { actor: 'robin', override: 'fixes checkout outage INC-42' });
      expect(r.git(['log', '-1', '--format=%(trailers:key=Slipway-Freeze-Override,valueonly)', mergeCommit], r.repo)).toBe(
        'fixes checkout outage INC-42 (window "black-friday")',
      );
    });

    it('always lets a rollback through', async () => {
      const p = await provider.propose(change({ environment: 'production', rollback: true, message: 'error rate doubled' }));
      const { mergeCommit } = await provider.merge(p.id, { actor: 'robin' });
      expect(r.git(['log', '-1', '--format=%(trailers:key=Slipway-Rollback,valueonly)', mergeCommit], r.repo)).toBe('error rate doubled');
    });

    it('merges once the window is over', async () => {
      const p = await provider.propose(change({ environment: 'production' }));
      await expect(provider.merge(p.id, { actor: 'robin', now: new Date('2026-11-30T08:00:00Z') })).resolves.toMatchObject({ proposal: { state: 'merged' } });
    });
  });

  describe('a quarantined digest', () => {
    it('is never proposed', async () => {
      r = makeEnvRepo({
        bare: true,
        quarantine: `apiVersion: slipway.dev/v1\nkind: Quarantine\nspec:\n  digests:\n    - digest: ${NEW}\n      service: web\n      reason: reverted after SLO breach\n`,
      });
      const provider = new LocalGitProvider({ repo: r.repo, verify: verifier().verify, clock });
      await expectRefusal(provider.propose(change()), 'QUARANTINED', /reverted after SLO breach/);
      expect(r.git(['branch', '--list', 'slipway/*'], r.repo)).toBe('');
    });
  });
});
