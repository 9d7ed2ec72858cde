import { Harness } from './harness.js';
import { digestOf } from '../../support/envrepo.js';
import type { Strategy } from '../../../schemas/index.js';

const A = digestOf('a');
const B = digestOf('b');
const C = digestOf('c');
const CANARY: Strategy = { canary: { steps: [{ setWeight: 20 }, { pause: {} }, { analysis: { interval: '1m' } }, { setWeight: 50 }, { setWeight: 100 }] } };

let h: Harness;
afterEach(() => h?.cleanup());

describe('the reconcile loop', () => {
  describe('on the first sync of a repository', () => {
    it('starts every service and records the commit as applied', async () => {
      h = Harness.create({ web: { digest: A }, api: { digest: B } });
      const report = await h.reconciler.sync('startup');
      expect(report.error).toBeUndefined();
      expect(report.changed.map((c) => c.service).sort()).toEqual(['api', 'web']);
      expect(h.reconciler.record('staging', 'web')?.state.phase).toBe('Completed');
      expect((await h.target.observe({ environment: 'staging', service: 'api' })).stable?.digest).toBe(B);
      expect(h.reconciler.environmentRecords()[0]?.lastAppliedCommit).toBe(h.repo.head());
    });
  });

  describe('when main has not moved', () => {
    it('reports unchanged and touches nothing', async () => {
      h = Harness.create({ web: { digest: A } });
      await h.reconciler.sync('startup');
      const calls = h.target.calls.length;
      const report = await h.reconciler.sync('interval');
      expect(report.unchanged).toBe(true);
      expect(h.target.calls.length).toBe(calls);
    });
  });

  describe('when one service of many changes', () => {
    it('touches only that service', async () => {
      h = Harness.create({ web: { digest: A }, api: { digest: A }, worker: { digest: A } });
      await h.reconciler.sync('startup');
      const before = h.target.calls.length;
      h.repo.setService('staging', 'api', { digest: B });
      h.repo.commit('api to B');
      const report = await h.reconciler.sync('webhook');
      expect(report.changed).toEqual([{ environment: 'staging', service: 'api', outcome: 'Completed' }]);
      expect(new Set(h.target.calls.slice(before).map((c) => c.ref))).toEqual(new Set(['staging/api']));
      expect(h.verifier.asked.filter((d) => d === B)).toHaveLength(1);
    });
  });

  describe('a canary rollout', () => {
    it('walks the steps with a person promoting the pause and analysis on the moved clock', async () => {
      h = Harness.create({ web: { digest: A, strategy: CANARY } });
      await h.reconciler.sync('startup');
      h.repo.setService('staging', 'web', { digest: B, strategy: CANARY });
      h.repo.commit('web to B');
      await h.reconciler.sync('webhook');
      const rec = () => h.reconciler.record('staging', 'web')!;
      expect(rec().state.phase).toBe('Paused');
      expect(h.target.weightOf({ environment: 'staging', service: 'web' })).toBe(20);

      await h.reconciler.promote('staging', 'web', 'alice');
      expect(rec().state.phase).toBe('Analyzing');
      expect(await h.reconciler.runDue()).toBe(0);

      h.tick(60_000);
      await h.reconciler.runDue();
      expect(h.analysis.windows).toHaveLength(1);
      expect(rec().state.phase).toBe('Completed');
      expect(h.target.weights('staging/web')).toEqual([20, 50, 100]);
      expect((await h.target.observe({ environment: 'staging', service: 'web' })).stable?.digest).toBe(B);
      const actions = (await h.audit.list({ service: 'web' })).map((e) => e.action);
      expect(actions).toEqual(expect.arrayContaining(['RolloutStarted', 'TrafficShifted', 'Paused', 'PromoteRequested', 'AnalysisVerdict', 'Completed']));
    });

    describe('a blue-green rollout with analysis after the switch', () => {
      it('tells the judge which step asks and when traffic switched, so the baseline is read from before the switch', async () => {
        const strategy: Strategy = { blueGreen: { postSwitchAnalysis: { interval: '1m', count: 1 }, scaleDownDelay: '1m' } };
        h = Harness.create({ web: { digest: A, strategy } });
        await h.reconciler.sync('startup');
        h.repo.setService('staging', 'web', { digest: B, strategy });
        h.repo.commit('web to B');
        await h.reconciler.sync('webhook');
        for (let i = 0; i < 5 && h.reconciler.record('staging', 'web')!.state.phase !== 'Completed'; i++) {
          h.tick(60_000);
          await h.reconciler.runDue();
        }
        expect(h.reconciler.record('staging', 'web')!.state.phase).toBe('Completed');
        const postSwitch = h.analysis.windows.filter((w) => w.label === 'postSwitch');
        expect(postSwitch).toHaveLength(1);
        expect(postSwitch[0]!.switchedAt).toBeInstanceOf(Date);
        expect(postSwitch[0]!.switchedAt!.getTime()).toBeLessThanOrEqual(postSwitch[0]!.start.getTime());
        expect(h.target.weights('staging/web')).toEqual([100]);
      });
    });

    describe('when the analysis fails', () => {
      it('sends all traffic to stable, commits a revert to main, then converges to the old digest', async () => {
        const strategy: Strategy = { canary: { steps: [{ setWeight: 20 }, { analysis: { interval: '1m' } }, { setWeight: 50 }, { setWeight: 100 }] } };
        h = Harness.create({ web: { digest: A, strategy } });
        await h.reconciler.sync('startup');
        h.repo.setService('staging', 'web', { digest: B, strategy });
        const bad = h.repo.commit('web to B');
        await h.reconciler.sync('webhook');
        h.analysis.outcomes.push('fail', 'fail');
        h.tick(60_000);
        await h.reconciler.runDue();
        h.tick(60_000);
        await h.reconciler.runDue();
        const rec = h.reconciler.record('staging', 'web')!;
        expect(rec.state.phase).toBe('RolledBack');
        expect(h.target.weightOf({ environment: 'staging', service: 'web' })).toBe(0);
        expect(h.repo.git('log', '-1', '--format=%B')).toContain(`Slipway-Reverts: ${bad}`);
        expect(rec.lastRevert?.revertedCommit).toBe(bad);

        await h.reconciler.sync('webhook');
        expect(h.reconciler.record('staging', 'web')!.state.phase).toBe('Completed');
        expect((await h.target.observe({ environment: 'staging', service: 'web' })).stable?.digest).toBe(A);
      });
    });

    describe('when a newer digest arrives mid-rollout', () => {
      it('aborts the running one back to stable and starts the newer one from stable', async () => {
        h = Harness.create({ web: { digest: A, strategy: CANARY } });
        await h.reconciler.sync('startup');
        h.repo.setService('staging', 'web', { digest: B, strategy: CANARY });
        h.repo.commit('web to B');
        await h.reconciler.sync('webhook');
        expect(h.target.weightOf({ environment: 'staging', service: 'web' })).toBe(20);
        h.repo.setService('staging', 'web', { digest: C, strategy: CANARY });
        h.repo.commit('web to C');
        await h.reconciler.sync('webhook');
        const obs = await h.target.observe({ environment: 'staging', service: 'web' });
        expect(obs.stable?.digest).toBe(A);
        expect(obs.canary?.digest).toBe(C);
        expect(h.target.weights('staging/web')).toEqual([20, 0, 20]);
        const actions = (await h.audit.list({ service: 'web' })).map((e) => e.action);
        expect(actions).toContain('Superseded');
      });
    });
  });

  describe('gates', () => {
    it('refuses a digest without valid provenance and keeps the previous one running', async () => {
      h = Harness.create({ web: { digest: A } });
      await h.reconciler.sync('startup');
      h.verifier.refused.set(B, 'UNTRUSTED_KEY');
      h.repo.setService('staging', 'web', { digest: B });
      h.repo.commit('web to B');
      const before = h.target.calls.length;
      const report = await h.reconciler.sync('webhook');
      expect(report.changed).toEqual([{ environment: 'staging', service: 'web', outcome: 'refused:UNTRUSTED_KEY' }]);
      expect(h.target.calls.length).toBe(before);
      const rec = h.reconciler.record('staging', 'web')!;
      expect(rec.gate).toMatchObject({ status: 'refused', code: 'UNTRUSTED_KEY', digest: B });
      expect(rec.desiredDigest).toBe(B);
      expect(rec.state.stable?.digest).toBe(A);
      expect((await h.audit.list()).some((e) => e.action === 'ChangeRefused' && e.digest === B)).toBe(true);
      expect(await h.reconciler.metrics.registry.getSingleMetricAsString('slipway_refusals_total')).toContain('code="UNTRUSTED_KEY"} 1');
    });

    it('refuses a quarantined digest', async () => {
      h = Harness.create({ web: { digest: A } });
      await h.reconciler.sync('startup');
      h.repo.write('quarantine.yaml', `apiVersion: slipway.dev/v1\nkind: Quarantine\nspec:\n  digests:\n    - digest: ${B}\n      reason: breached error SLO\n`);
      h.repo.setService('staging', 'web', { digest: B });
      h.repo.commit('web to B');
      await h.reconciler.sync('webhook');
      expect(h.reconciler.record('staging', 'web')!.gate?.code).toBe('QUARANTINED');
      expect((await h.target.observe({ environment: 'staging', service: 'web' })).stable?.digest).toBe(A);
    });

    describe('an invalid commit', () => {
      it('applies nothing of it, keeps the last good commit and reports where the problem is', async () => {
        h = Harness.create({ web: { digest: A }, api: { digest: A } });
        await h.reconciler.sync('startup');
        const good = h.repo.head();
        h.repo.setService('staging', 'web', { digest: B });
        h.repo.write('staging/services/api.yaml', 'apiVersion: slipway.dev/v1\nkind: Service\nmetadata:\n  name: api\nspec:\n  image:\n    repository: oci:/x\n    digest: latest\n  port: 8080\n');
        const bad = h.repo.commit('web to B and a broken api');
        const before = h.target.calls.length;
        const report = await h.reconciler.sync('webhook');
        expect(report.problems?.[0]).toMatchObject({ file: 'staging/services/api.yaml', line: 8, path: 'spec.image.digest' });
        expect(h.target.calls.length).toBe(before);
        const env = h.reconciler.environmentRecords()[0]!;
        expect(env).toMatchObject({ lastAppliedCommit: good, rejectedCommit: bad });
        expect((await h.audit.list()).some((e) => e.action === 'CommitRejected' && e.commit === bad)).toBe(true);

        h.repo.setService('staging', 'api', { digest: A });
        h.repo.commit('fix api');
        await h.reconciler.sync('webhook');
        expect((await h.target.observe({ environment: 'staging', service: 'web' })).stable?.digest).toBe(B);
        expect(h.reconciler.environmentRecords()[0]!.rejectedCommit).toBeUndefined();
      });
    });

    describe('a freeze window', () => {
      const freeze = `apiVersion: slipway.dev/v1\nkind: FreezeWindows\nspec:\n  windows:\n    - name: launch\n      reason: product launch\n      start: "2026-11-23T09:00"\n      end: "2026-11-23T12:00"\n      timeZone: UTC\n`;

      it('holds a change until the window ends, then applies it by itself', async () => {
        h = Harness.create({ web: { digest: A } });
        h.repo.write('staging/freeze.yaml', freeze);
        h.repo.commit('freeze for the launch');
        await h.reconciler.sync('startup');
        // The first version was let in? No: it is a change like any other.
        expect(h.reconciler.record('staging', 'web')!.gate?.code).toBe('FROZEN');
        expect(h.reconciler.nextWakeUp()?.toISOString()).toBe('2026-11-23T12:00:00.000Z');
        h.tick(60 * 60_000);
        await h.reconciler.runDue();
        expect(h.target.calls).toHaveLength(0);
        h.tick(60 * 60_000);
        await h.reconciler.runDue();
        expect(h.reconciler.record('staging', 'web')!.gate).toBeUndefined();
        expect((await h.target.observe({ environment: 'staging', service: 'web' })).stable?.digest).toBe(A);
      });

      it('applies a change merged with an override at once, records it, and still holds the next plain change', async () => {
        h = Harness.create({ web: { digest: A } });
        h.now = new Date('2026-11-23T08:00:00.000Z');
        await h.reconciler.sync('startup');
        h.repo.write('staging/freeze.yaml', freeze);
        h.repo.commit('freeze for the launch');
        h.now = new Date('2026-11-23T10:00:00.000Z');
        h.repo.setService('staging', 'web', { digest: B });
        const overridden = h.repo.commit('Merge slipway/staging/web-bbbbbbbb\n\nSlipway-Freeze-Override: hotfix for incident 42 (window "launch")');
        await h.reconciler.sync('webhook');
        expect(h.reconciler.record('staging', 'web')!.gate).toBeUndefined();
        expect(h.reconciler.record('staging', 'web')!.state.desired?.digest).toBe(B);
        const entry = (await h.audit.list()).find((e) => e.action === 'FreezeOverridden');
        expect(entry).toMatchObject({ service: 'web', data: { window: 'launch', overrideCommit: overridden } });
        expect(entry!.message).toContain('hotfix for incident 42');

        h.repo.setService('staging', 'web', { digest: A });
        h.repo.commit('web back to A, no override');
        await h.reconciler.sync('webhook');
        expect(h.reconciler.record('staging', 'web')!.gate?.code).toBe('FROZEN');
      });

      it('lets a revert through at once', async () => {
        h = Harness.create({ web: { digest: A } });
        h.now = new Date('2026-11-23T08:00:00.000Z');
        await h.reconciler.sync('startup');
        h.repo.setService('staging', 'web', { digest: B });
        h.repo.commit('web to B');
        await h.reconciler.sync('webhook');
        h.repo.write('staging/freeze.yaml', freeze);
        h.repo.commit('freeze for the launch');
        h.now = new Date('2026-11-23T10:00:00.000Z');
        await h.reconciler.sync('webhook');
        h.repo.git('revert', '--no-edit', 'HEAD~1');
        await h.reconciler.sync('webhook');
        expect(h.reconciler.record('staging', 'web')!.gate).toBeUndefined();
        expect((await h.target.observe({ environment: 'staging', service: 'web' })).stable?.digest).toBe(A);
        expect((await h.audit.list()).some((e) => e.action === 'RollbackCommitApplied')).toBe(true);
      });
    });
  });

  describe('a service removed from the environment', () => {
    it('stops its instances and forgets its record', async () => {
      h = Harness.create({ web: { digest: A }, api: { digest: A } });
      await h.reconciler.sync('startup');
      h.repo.remove('staging/services/api.yaml');
      h.repo.commit('retire api');
      await h.reconciler.sync('webhook');
      expect(h.target.calls.at(-1)).toEqual({ op: 'removeService', ref: 'staging/api' });
      expect(h.reconciler.record('staging', 'api')).toBeUndefined();
    });
  });
});
