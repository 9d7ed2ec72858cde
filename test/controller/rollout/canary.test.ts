import { completed, decide } from '../../../controller/rollout/index.js';
import type { Strategy } from '../../../schemas/index.js';
import { DIGEST_A, DIGEST_B, DIGEST_C, specOf, worldWithStable } from './harness.js';

const canary = (steps: Strategy extends infer S ? (S extends { canary: { steps: infer T } } ? T : never) : never): Strategy => ({ canary: { steps } });

const STEPS = canary([{ setWeight: 20 }, { pause: { duration: '1m' } }, { setWeight: 50 }, { analysis: { interval: '30s', count: 2 } }]);

describe('canary rollout', () => {
  describe('when every step passes', () => {
    it('shifts traffic 20 → 50 once each, then promotes the canary to stable', () => {
      const world = worldWithStable(DIGEST_A, {}, STEPS);
      const spec = specOf(DIGEST_B, STEPS);
      const decision = world.runUntilSettled(spec);
      expect(world.weights()).toEqual([20, 50]);
      expect(world.of('promote')).toHaveLength(1);
      expect(world.of('runAnalysis')).toHaveLength(2);
      expect(decision.state.phase).toBe('Completed');
      expect(decision.state.stable?.digest).toBe(DIGEST_B);
      expect(world.target.stable?.digest).toBe(DIGEST_B);
      expect(world.target.canary).toBeUndefined();
      expect(world.events()).toEqual([
        'RolloutStarted',
        'TrafficShifted',
        'Paused',
        'TrafficShifted',
        'AnalysisVerdict',
        'AnalysisVerdict',
        'Promoting',
        'Completed',
      ]);
    });

    it('keeps the canary at weight 0 until its instances are ready', () => {
      const world = worldWithStable(DIGEST_A, { neverReady: DIGEST_B }, STEPS);
      const decision = world.reconcile(specOf(DIGEST_B, STEPS));
      expect(decision.state.phase).toBe('Progressing');
      expect(world.weights()).toEqual([]);
      expect(decision.requeueAt).toBeDefined();
    });
  });

  describe('when a timed pause is reached', () => {
    it('waits in Paused and asks to be woken exactly when the pause ends', () => {
      const world = worldWithStable(DIGEST_A, {}, STEPS);
      const started = world.now.getTime();
      const decision = world.reconcile(specOf(DIGEST_B, STEPS));
      expect(decision.state.phase).toBe('Paused');
      expect(Date.parse(decision.requeueAt!)).toBe(started + 60_000);
    });

    it('does not move before the pause ends, however often it is asked', () => {
      const world = worldWithStable(DIGEST_A, {}, STEPS);
      const spec = specOf(DIGEST_B, STEPS);
      world.reconcile(spec);
      for (let i = 0; i < 5; i++) {
        world.tick(10_000);
        const decision = world.reconcile(spec);
        expect(decision.intents).toEqual([]);
        expect(decision.state.phase).toBe('Paused');
      }
      world.tick(10_000);
      expect(world.reconcile(spec).state.phase).toBe('Analyzing');
      expect(world.weights()).toEqual([20, 50]);
    });
  });

  describe('when a pause has no duration', () => {
    const INDEFINITE = canary([{ setWeight: 10 }, { pause: {} }, { setWeight: 60 }]);

    it('waits for a person however long it takes', () => {
      const world = worldWithStable(DIGEST_A, {}, INDEFINITE);
      const spec = specOf(DIGEST_B, INDEFINITE);
      const decision = world.runUntilSettled(spec, 24 * 3_600_000);
      expect(decision.state.phase).toBe('Paused');
      expect(decision.requeueAt).toBeUndefined();
      world.tick(7 * 24 * 3_600_000);
      expect(world.reconcile(spec).intents).toEqual([]);
      expect(world.weights()).toEqual([10]);
    });

    it('resumes when promoted and finishes the remaining steps', () => {
      const world = worldWithStable(DIGEST_A, {}, INDEFINITE);
      const spec = specOf(DIGEST_B, INDEFINITE);
      world.runUntilSettled(spec);
      world.state = { ...world.state, promoteRequested: true };
      const decision = world.runUntilSettled(spec);
      expect(world.weights()).toEqual([10, 60]);
      expect(decision.state.phase).toBe('Completed');
      expect(world.events()).toContain('Resumed');
    });
  });

  describe('when the target lost the canary and its weight (a restarted local target)', () => {
    const INDEFINITE = canary([{ setWeight: 10 }, { pause: {} }, { setWeight: 60 }]);

    it('re-creates the canary, puts the weight back without a new traffic shift, and stays at the same step', () => {
      const world = worldWithStable(DIGEST_A, {}, INDEFINITE);
      const spec = specOf(DIGEST_B, INDEFINITE);
      world.runUntilSettled(spec);
      const step = world.state.stepIndex;
      world.applied = [];
      delete world.target.canary;
      world.target.canaryWeight = 0;
      const decision = world.runUntilSettled(spec);
      expect(world.of('ensureTrack').map((i) => i.track)).toEqual(['canary']);
      expect(world.weights()).toEqual([10]);
      expect(world.events()).not.toContain('TrafficShifted');
      expect(decision.state.phase).toBe('Paused');
      expect(decision.state.stepIndex).toBe(step);
      expect(world.target.canaryWeight).toBe(10);
    });

    it('does not re-send a weight the target reports only approximately', () => {
      const world = worldWithStable(DIGEST_A, {}, INDEFINITE);
      const spec = specOf(DIGEST_B, INDEFINITE);
      world.runUntilSettled(spec);
      world.target.canaryWeight = 12;
      world.applied = [];
      expect(world.reconcile(spec).intents).toEqual([]);
    });
  });

  describe('when the analysis fails failureLimit times in a row', () => {
    it('moves all traffic to stable, stops the canary and asks git to revert the digest', () => {
      const world = worldWithStable(DIGEST_A, {}, STEPS);
      world.verdicts = ['fail', 'fail'];
      const decision = world.runUntilSettled(specOf(DIGEST_B, STEPS));
      expect(decision.state.phase).toBe('RolledBack');
      expect(world.weights()).toEqual([20, 50, 0]);
      const tail = world.applied.filter((i) => i.type !== 'emitEvent').slice(-3).map((i) => i.type);
      expect(tail).toEqual(['setWeight', 'removeTrack', 'revert']);
      expect(world.of('revert')[0]).toMatchObject({ badDigest: DIGEST_B });
      expect(world.target).toMatchObject({ canaryWeight: 0, stable: { digest: DIGEST_A } });
      expect(world.target.canary).toBeUndefined();
      expect(world.of('promote')).toHaveLength(0);
    });

    it('leaves the bad digest out while git still names it (waiting for the revert commit)', () => {
      const world = worldWithStable(DIGEST_A, {}, STEPS);
      world.verdicts = ['fail', 'fail'];
      const spec = specOf(DIGEST_B, STEPS);
      world.runUntilSettled(spec);
      world.tick(3_600_000);
      const again = world.reconcile(spec);
      expect(again.intents).toEqual([]);
      expect(completed(again.state.phase)).toBe(true);
    });

    it('settles on the old digest when the revert arrives, without starting anything', () => {
      const world = worldWithStable(DIGEST_A, {}, STEPS);
      world.verdicts = ['fail', 'fail'];
      world.runUntilSettled(specOf(DIGEST_B, STEPS));
      world.applied = [];
      const decision = world.runUntilSettled(specOf(DIGEST_A, STEPS));
      expect(decision.state.phase).toBe('Completed');
      expect(world.weights()).toEqual([]);
      expect(world.target.stable?.digest).toBe(DIGEST_A);
    });
  });

  describe('when one interval fails and the next passes, with failureLimit 2', () => {
    it('does not roll back (one bad interval is not a breach)', () => {
      const world = worldWithStable(DIGEST_A, {}, STEPS);
      world.verdicts = ['fail', 'pass', 'pass'];
      const spec = specOf(DIGEST_B, STEPS);
      const decision = world.runUntilSettled({ ...spec, analysis: { ...spec.analysis, failureLimit: 2 } });
      expect(decision.state.phase).toBe('Completed');
      expect(world.of('revert')).toHaveLength(0);
      expect(world.of('runAnalysis')).toHaveLength(3);
    });
  });

  describe('when one interval fails, with the default failureLimit (1: the judge is already sequential)', () => {
    it('rolls back at that interval', () => {
      const world = worldWithStable(DIGEST_A, {}, STEPS);
      world.verdicts = ['fail', 'pass', 'pass'];
      const decision = world.runUntilSettled(specOf(DIGEST_B, STEPS));
      expect(decision.state.phase).toBe('RolledBack');
      expect(world.of('runAnalysis')).toHaveLength(1);
      expect(world.of('revert')).toHaveLength(1);
    });
  });

  describe('when the analysis stays inconclusive', () => {
    it('holds instead of promoting, and a person can accept it with promote', () => {
      const world = worldWithStable(DIGEST_A, {}, STEPS);
      world.verdicts = ['inconclusive', 'inconclusive', 'inconclusive'];
      const spec = specOf(DIGEST_B, STEPS);
      const held = world.runUntilSettled(spec);
      expect(held.state.phase).toBe('Paused');
      expect(held.state.analysis?.holding).toBe(true);
      expect(world.of('promote')).toHaveLength(0);
      expect(world.of('revert')).toHaveLength(0);
      world.state = { ...world.state, promoteRequested: true };
      expect(world.runUntilSettled(spec).state.phase).toBe('Completed');
    });
  });

  describe('when a newer digest arrives mid-canary', () => {
    it('aborts the running canary, returns traffic to stable, and starts the new one from stable', () => {
      const world = worldWithStable(DIGEST_A, {}, STEPS);
      world.reconcile(specOf(DIGEST_B, STEPS));
      expect(world.target.canaryWeight).toBe(20);
      world.applied = [];
      world.tick(5_000);
      const decision = world.reconcile(specOf(DIGEST_C, STEPS));
      const firstIntents = world.applied.filter((i) => i.type !== 'emitEvent').slice(0, 3).map((i) => i.type);
      expect(firstIntents).toEqual(['setWeight', 'removeTrack', 'ensureTrack']);
      expect(world.events()[0]).toBe('Superseded');
      expect(decision.state.desired?.digest).toBe(DIGEST_C);
      expect(world.of('revert')).toHaveLength(0);
      const done = world.runUntilSettled(specOf(DIGEST_C, STEPS));
      expect(done.state.stable?.digest).toBe(DIGEST_C);
      expect(world.weights()).toEqual([0, 20, 50]);
    });
  });

  describe('when the digest already ran healthy in this environment (a revert to known-good)', () => {
    it('skips the canary steps and promotes as soon as the instances are ready', () => {
      const world = worldWithStable(DIGEST_A, {}, STEPS);
      world.runUntilSettled(specOf(DIGEST_B, STEPS));
      world.applied = [];
      const decision = world.runUntilSettled(specOf(DIGEST_A, STEPS), 10_000);
      expect(decision.state.phase).toBe('Completed');
      expect(decision.state.fastPath).toBe(true);
      expect(world.weights()).toEqual([]);
      expect(world.of('runAnalysis')).toHaveLength(0);
      expect(world.target.stable?.digest).toBe(DIGEST_A);
    });
  });

  describe('when the canary instances crash', () => {
    it('rolls back before any traffic reaches them', () => {
      const world = worldWithStable(DIGEST_A, { crashing: DIGEST_B }, STEPS);
      const decision = world.runUntilSettled(specOf(DIGEST_B, STEPS));
      expect(decision.state.phase).toBe('RolledBack');
      expect(world.weights()).toEqual([0]);
      expect(world.of('revert')[0]?.reason).toMatch(/canary instances failed/);
    });
  });

  describe('when the canary never becomes ready', () => {
    it('rolls back once the progress deadline passes', () => {
      const world = worldWithStable(DIGEST_A, { neverReady: DIGEST_B }, STEPS);
      const decision = world.runUntilSettled(specOf(DIGEST_B, STEPS), 10 * 60_000);
      expect(decision.state.phase).toBe('RolledBack');
      expect(world.of('revert')[0]?.reason).toMatch(/not ready within 300s/);
    });
  });

  describe('when asked twice at the same instant', () => {
    it('decides nothing new the second time (the loop never spins)', () => {
      const world = worldWithStable(DIGEST_A, {}, STEPS);
      const spec = specOf(DIGEST_B, STEPS);
      world.reconcile(spec);
      const again = decide(world.state, { target: world.target }, world.now, spec);
      expect(again.intents).toEqual([]);
      expect(again.state).toEqual(world.state);
    });
  });

  describe('intent ids', () => {
    it('are unique across a whole rollout and its successor', () => {
      const world = worldWithStable(DIGEST_A, {}, STEPS);
      world.runUntilSettled(specOf(DIGEST_B, STEPS));
      world.runUntilSettled(specOf(DIGEST_C, STEPS));
      const ids = world.applied.map((i) => i.id);
      expect(new Set(ids).size).toBe(ids.length);
    });
  });

  describe('when the analysis step has a warm-up', () => {
    const WARM = canary([{ setWeight: 20 }, { analysis: { interval: '30s', count: 2, warmup: '10s' } }]);

    it('judges nothing from the warm-up: the first window starts after it and the next one follows on', () => {
      const world = worldWithStable(DIGEST_A, {}, WARM);
      const stepStart = world.now.getTime();
      const decision = world.reconcile(specOf(DIGEST_B, WARM));
      expect(Date.parse(decision.requeueAt!)).toBe(stepStart + 40_000);
      world.runUntilSettled(specOf(DIGEST_B, WARM));
      const windows = world.of('runAnalysis').map((i) => [Date.parse(i.start) - stepStart, Date.parse(i.end) - stepStart]);
      expect(windows).toEqual([
        [10_000, 40_000],
        [40_000, 70_000],
      ]);
    });

    it('takes the environment default when the step names none', () => {
      const steps = canary([{ setWeight: 20 }, { analysis: { interval: '30s', count: 1 } }]);
      const world = worldWithStable(DIGEST_A, {}, steps);
      const stepStart = world.now.getTime();
      world.runUntilSettled(specOf(DIGEST_B, steps, { analysis: { warmup: '5s' } }));
      expect(world.of('runAnalysis').map((i) => Date.parse(i.start) - stepStart)).toEqual([5_000]);
    });
  });
});
