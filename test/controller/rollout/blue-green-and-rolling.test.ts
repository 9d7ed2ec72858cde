import { completed, PHASES, planFor } from '../../../controller/rollout/index.js';
import type { Strategy } from '../../../schemas/index.js';
import { DIGEST_A, DIGEST_B, specOf, World, worldWithStable } from './harness.js';

const BLUE_GREEN: Strategy = {
  blueGreen: { previewAnalysis: { interval: '10s', count: 1 }, postSwitchAnalysis: { interval: '20s', count: 2 }, scaleDownDelay: '5m' },
};

describe('blue-green rollout', () => {
  describe('when the preview and the post-switch analysis pass', () => {
    it('runs the preview at weight 0, switches all traffic at once, keeps the old version warm, then retires it', () => {
      const world = worldWithStable(DIGEST_A, {}, BLUE_GREEN);
      const spec = specOf(DIGEST_B, BLUE_GREEN);
      const start = world.now.getTime();

      const preview = world.reconcile(spec);
      expect(preview.state.phase).toBe('Analyzing');
      expect(world.target.canary?.digest).toBe(DIGEST_B);
      expect(world.target.canaryWeight).toBe(0);

      world.runUntilSettled(spec, 10_000 + 40_000);
      expect(world.weights()).toEqual([100]);
      expect(world.state.phase).toBe('Paused');
      expect(world.target.stable?.digest).toBe(DIGEST_A);
      const switchedAt = Date.parse(world.state.stepStartedAt!);
      expect(switchedAt).toBe(start + 10_000 + 40_000);

      world.now = new Date(switchedAt + 5 * 60_000 - 1);
      expect(world.reconcile(spec).state.phase).toBe('Paused');
      world.now = new Date(switchedAt + 5 * 60_000);
      const done = world.runUntilSettled(spec);
      expect(done.state.phase).toBe('Completed');
      expect(world.target.stable?.digest).toBe(DIGEST_B);
      expect(world.target.canary).toBeUndefined();
    });
  });

  describe('when the post-switch analysis breaches', () => {
    it('switches traffic back in one step and asks git to revert', () => {
      const world = worldWithStable(DIGEST_A, {}, BLUE_GREEN);
      world.verdicts = ['pass', 'fail', 'fail'];
      const decision = world.runUntilSettled(specOf(DIGEST_B, BLUE_GREEN));
      expect(decision.state.phase).toBe('RolledBack');
      expect(world.weights()).toEqual([100, 0]);
      expect(world.target.stable?.digest).toBe(DIGEST_A);
      expect(world.of('revert')).toHaveLength(1);
    });
  });

  describe('when autoPromote is off', () => {
    it('waits with the preview ready until a person promotes', () => {
      const strategy: Strategy = { blueGreen: { autoPromote: false } };
      const world = worldWithStable(DIGEST_A, {}, strategy);
      const spec = specOf(DIGEST_B, strategy);
      const waiting = world.runUntilSettled(spec);
      expect(waiting.state.phase).toBe('Paused');
      expect(world.weights()).toEqual([]);
      world.state = { ...world.state, promoteRequested: true };
      expect(world.runUntilSettled(spec).state.phase).toBe('Completed');
      expect(world.weights()).toEqual([100]);
    });
  });
});

describe('rolling rollout', () => {
  describe('when a service appears for the first time', () => {
    it('starts the stable track directly and completes when it is ready', () => {
      const world = new World();
      const decision = world.runUntilSettled(specOf(DIGEST_A));
      expect(decision.state.phase).toBe('Completed');
      expect(decision.state.mode).toBe('initial');
      expect(world.of('ensureTrack').map((i) => i.track)).toEqual(['stable']);
    });

    it('aborts (it has nothing to revert to) when the first version crashes', () => {
      const world = new World({ crashing: DIGEST_A });
      const decision = world.runUntilSettled(specOf(DIGEST_A));
      expect(decision.state.phase).toBe('Aborted');
      expect(decision.state.message).toMatch(/failed/);
      expect(world.of('revert')).toHaveLength(0);
    });
  });

  describe('when the digest changes', () => {
    it('starts the new version next to the old one and promotes it once ready, without weight steps', () => {
      const world = worldWithStable(DIGEST_A);
      const decision = world.runUntilSettled(specOf(DIGEST_B));
      expect(decision.state.phase).toBe('Completed');
      expect(world.weights()).toEqual([]);
      expect(world.applied.filter((i) => i.type !== 'emitEvent').map((i) => i.type)).toEqual(['ensureTrack', 'promote']);
    });
  });

  describe('when only the configuration changes (same digest)', () => {
    it('updates the stable track in place', () => {
      const world = worldWithStable(DIGEST_A);
      const decision = world.runUntilSettled(specOf(DIGEST_A, undefined, { replicas: 3 }));
      expect(decision.state.mode).toBe('inPlace');
      expect(world.of('ensureTrack')).toEqual([expect.objectContaining({ track: 'stable', spec: expect.objectContaining({ replicas: 3 }) })]);
      expect(world.target.stable?.replicas).toBe(3);
    });
  });

  describe('when the stable track vanished from the target', () => {
    it('puts it back', () => {
      const world = worldWithStable(DIGEST_A);
      world.target = { canaryWeight: 0 };
      world.reconcile(specOf(DIGEST_A));
      expect(world.target).toMatchObject({ stable: { digest: DIGEST_A } });
    });
  });
});

describe('phases', () => {
  it.each([
    ['Idle', true],
    ['Progressing', false],
    ['Paused', false],
    ['Analyzing', false],
    ['Promoting', false],
    ['Completed', true],
    ['Aborted', true],
    ['RolledBack', true],
  ] as const)('%s completed() is %s', (phase, expected) => {
    expect(completed(phase)).toBe(expected);
  });

  it('lists every phase once', () => {
    expect(new Set(PHASES).size).toBe(8);
  });
});

describe('plans', () => {
  it('compile each canary step to one plan step followed by promote', () => {
    const plan = planFor(specOf(DIGEST_B, { canary: { steps: [{ setWeight: 5 }, { pause: {} }, { analysis: { count: 3 } }] } }), false);
    expect(plan).toEqual([
      { kind: 'setWeight', weight: 5 },
      { kind: 'pause', reason: 'step' },
      { kind: 'analysis', label: 'canary', intervalMs: 30_000, count: 3, warmupMs: 0 },
      { kind: 'promote' },
    ]);
  });

  it('reduce to promote for a known-good digest', () => {
    expect(planFor(specOf(DIGEST_B, BLUE_GREEN), true)).toEqual([{ kind: 'promote' }]);
  });
});
