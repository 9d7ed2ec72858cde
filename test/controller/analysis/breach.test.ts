/**
 * From judge to git: the reconcile loop with the real judge reading the local proxy's request log, and the real
 * rollback (lib/rollback) on a real repository. A new version that answers 5xx to a share of requests breaches,
 * traffic goes back to stable, the revert commit lands on main, the controller converges to the old digest and
 * the quarantined digest is refused when proposed again. Missing metrics hold the rollout instead of passing it.
 */
import fs from 'node:fs';
import { createAnalysisProvider } from '../../../controller/analysis/index.js';
import { ProxyRequestLog } from '../../../controller/proxy/index.js';
import { Reconciler } from '../../../controller/reconcile/index.js';
import { StateStore } from '../../../controller/state/index.js';
import { GitEnvironmentSource } from '../../../controller/sync/index.js';
import type { Track } from '../../../controller/targets/types.js';
import { createLocalRollback, isRollbackCommit, quarantinedDigests } from '../../../lib/rollback/index.js';
import type { Strategy } from '../../../schemas/index.js';
import { digestOf } from '../../support/envrepo.js';
import { Harness, utcFixedWindows } from '../reconcile/harness.js';

const A = digestOf('a');
const B = digestOf('b');
const STRATEGY: Strategy = { canary: { steps: [{ setWeight: 20 }, { analysis: { interval: '1m', count: 3 } }, { setWeight: 100 }] } };
const ref = { environment: 'staging', service: 'web' };

let h: Harness;
afterEach(() => h?.cleanup());

/** The reconciler of the harness, with the real judge and the real rollback in place of the scripted ones. */
function wire(log: ProxyRequestLog, beforeRevert: () => Promise<void> = async () => undefined): Reconciler {
  const rollback = createLocalRollback({ fs, dir: h.repo.dir, now: () => h.now });
  return new Reconciler({
    store: new StateStore(h.stateDir),
    ports: {
      source: new GitEnvironmentSource({ location: h.repo.dir }),
      targetFor: () => h.target,
      verifier: h.verifier,
      freeze: utcFixedWindows,
      analysis: createAnalysisProvider({ requestLog: log }),
      rollback: {
        async revert(request) {
          await beforeRevert();
          return rollback.revert(request);
        },
      },
      audit: h.audit,
      clock: { now: () => h.now },
    },
    log: (l) => h.lines.push(l),
  });
}

/** One minute of proxied traffic from now: 6000 requests, 20% to the canary; errorRate per track. */
function minuteOfTraffic(log: ProxyRequestLog, errorRate: Record<Track, number>): void {
  const start = h.now.getTime();
  for (const [track, count] of [['stable', 4800], ['canary', 1200]] as const) {
    const every = Math.round(1 / errorRate[track]);
    for (let i = 0; i < count; i++) {
      log.record(ref, track, { at: start + (60_000 * i) / count + 1, status: (i + 1) % every === 0 ? 503 : 200, latencyMs: 20 + (i % 7) });
    }
  }
}

describe('a canary whose new version answers 5xx to a share of requests', () => {
  it('breaches, moves traffic back, reverts on main, converges to the old digest, and the digest stays quarantined', async () => {
    h = Harness.create({ web: { digest: A, strategy: STRATEGY } });
    const log = new ProxyRequestLog();
    // Users first: when the revert commit starts, the traffic is already back on stable.
    const atRevert: { weight?: number }[] = [];
    const reconciler = wire(log, async () => {
      atRevert.push({ weight: h.target.weightOf(ref) });
    });
    await reconciler.sync('startup');
    h.repo.setService('staging', 'web', { digest: B, strategy: STRATEGY });
    const bad = h.repo.commit('web to B');
    await reconciler.sync('webhook');
    expect(h.target.weightOf(ref)).toBe(20);

    for (let i = 0; i < 2; i++) {
      minuteOfTraffic(log, { stable: 0.005, canary: 0.05 });
      h.tick(60_000);
      await reconciler.runDue();
    }

    const rec = reconciler.record('staging', 'web')!;
    expect(rec.state.phase).toBe('RolledBack');
    expect(h.target.weightOf(ref)).toBe(0);
    expect(atRevert).toEqual([{ weight: 0 }]);
    const message = h.repo.git('log', '-1', '--format=%B');
    expect(message.split('\n')[0]).toBe('Revert "web to B"');
    expect(message).toContain(`This reverts commit ${bad}.`);
    expect(message).toMatch(/errorRate: canary error rate 5\.00% vs baseline 0\.50%/);
    expect(h.repo.git('log', '-1', '--format=%(trailers:key=Slipway-Reverts,valueonly)').trim()).toBe(bad);
    expect(isRollbackCommit({ message })).toBe(true);
    expect(h.repo.git('show', 'HEAD:staging/services/web.yaml')).toContain(A);
    expect(quarantinedDigests(h.repo.git('show', 'HEAD:quarantine.yaml'))).toEqual([B]);
    expect(rec.lastRevert).toMatchObject({ revertedCommit: bad, restoredDigest: A, explicit: false });

    await reconciler.sync('webhook');
    expect(reconciler.record('staging', 'web')!.state.phase).toBe('Completed');
    expect((await h.target.observe(ref)).stable?.digest).toBe(A);

    // Proposing the bad digest again is refused by the quarantine gate.
    h.repo.setService('staging', 'web', { digest: B, strategy: STRATEGY });
    h.repo.commit('web to B again');
    await reconciler.sync('webhook');
    expect(reconciler.record('staging', 'web')!.gate?.code).toBe('QUARANTINED');
    expect((await h.target.observe(ref)).stable?.digest).toBe(A);
  });

  it('with no metrics at all, holds the rollout for a person instead of passing it', async () => {
    h = Harness.create({ web: { digest: A, strategy: STRATEGY } });
    const log = new ProxyRequestLog();
    const reconciler = wire(log);
    await reconciler.sync('startup');
    h.repo.setService('staging', 'web', { digest: B, strategy: STRATEGY });
    const head = h.repo.commit('web to B');
    await reconciler.sync('webhook');
    for (let i = 0; i < 6; i++) {
      h.tick(60_000);
      await reconciler.runDue();
    }
    const rec = reconciler.record('staging', 'web')!;
    expect(rec.state.phase).toBe('Paused');
    expect(rec.state.message).toMatch(/analysis inconclusive .* holding for a person/);
    expect(h.target.weightOf(ref)).toBe(20);
    expect(h.repo.git('rev-parse', 'HEAD').trim()).toBe(head);
  });
});
