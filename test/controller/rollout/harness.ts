/**
 * Drives the real rollout core against a plain-data model of a target (the same semantics the Target port
 * documents), with a clock the test moves. No sleeps: time only moves when the test says so.
 */
import { decide, initialState, rolloutSpecFrom, type Decision, type Intent, type RolloutSpec, type RolloutState } from '../../../controller/rollout/index.js';
import type { ServiceObservation } from '../../../controller/targets/types.js';
import type { Outcome } from '../../../controller/analysis/types.js';
import type { ServiceConfig, Strategy } from '../../../schemas/index.js';

export const DIGEST_A = `sha256:${'a'.repeat(64)}`;
export const DIGEST_B = `sha256:${'b'.repeat(64)}`;
export const DIGEST_C = `sha256:${'c'.repeat(64)}`;

export function serviceFile(digest: string, strategy?: Strategy, extra: Partial<ServiceConfig['spec']> = {}): ServiceConfig {
  return {
    apiVersion: 'slipway.dev/v1',
    kind: 'Service',
    metadata: { name: 'web' },
    spec: { image: { repository: 'oci:/images/web', digest }, port: 8080, replicas: 2, ...(strategy ? { strategy } : {}), ...extra },
  };
}

export function specOf(digest: string, strategy?: Strategy, extra: Partial<ServiceConfig['spec']> = {}): RolloutSpec {
  return rolloutSpecFrom(serviceFile(digest, strategy, extra));
}

export interface WorldOptions {
  /** Tracks of this digest never become ready. */
  neverReady?: string;
  /** Tracks of this digest report a crash loop. */
  crashing?: string;
}

/** Plain-data target + clock + a record of everything applied. */
export class World {
  state: RolloutState = initialState('staging', 'web');
  target: ServiceObservation = { canaryWeight: 0 };
  now = new Date('2026-11-23T10:00:00.000Z');
  applied: Intent[] = [];
  verdicts: Outcome[] = [];
  last?: Decision;

  constructor(private readonly options: WorldOptions = {}) {}

  tick(ms: number): void {
    this.now = new Date(this.now.getTime() + ms);
  }

  private apply(intent: Intent): { id: string; outcome: Outcome; summary: string } | undefined {
    this.applied.push(intent);
    const t = this.target;
    switch (intent.type) {
      case 'ensureTrack': {
        const ready = intent.spec.digest === this.options.neverReady || intent.spec.digest === this.options.crashing ? 0 : intent.spec.replicas;
        t[intent.track] = {
          digest: intent.spec.digest,
          replicas: intent.spec.replicas,
          readyReplicas: ready,
          ...(intent.spec.digest === this.options.crashing ? { failed: 'exit code 1 five times' } : {}),
        };
        return undefined;
      }
      case 'setWeight':
        t.canaryWeight = intent.weight;
        return undefined;
      case 'promote':
        if (t.canary) t.stable = t.canary;
        delete t.canary;
        t.canaryWeight = 0;
        return undefined;
      case 'removeTrack':
        delete t[intent.track];
        if (intent.track === 'canary') t.canaryWeight = 0;
        return undefined;
      case 'runAnalysis': {
        const outcome = this.verdicts.shift() ?? 'pass';
        return { id: intent.id, outcome, summary: `${outcome} (scripted)` };
      }
      case 'revert':
      case 'emitEvent':
        return undefined;
    }
  }

  /** One reconcile: decide, apply, and decide again while the core has something to do right now. */
  reconcile(spec: RolloutSpec): Decision {
    let verdict: { id: string; outcome: Outcome; summary: string } | undefined;
    for (let i = 0; i < 20; i++) {
      const decision = decide(this.state, { target: structuredClone(this.target), ...(verdict ? { verdict } : {}) }, this.now, spec);
      verdict = undefined;
      this.state = decision.state;
      this.last = decision;
      for (const intent of decision.intents) verdict = this.apply(intent) ?? verdict;
      if (decision.intents.length === 0) return decision;
    }
    throw new Error('the core kept emitting intents at the same instant: it spins');
  }

  /** Reconcile at each requeue time until the rollout stops asking (or `maxMs` passes). */
  runUntilSettled(spec: RolloutSpec, maxMs = 60 * 60_000): Decision {
    const end = this.now.getTime() + maxMs;
    let decision = this.reconcile(spec);
    while (decision.requeueAt && Date.parse(decision.requeueAt) <= end) {
      this.now = new Date(Math.max(Date.parse(decision.requeueAt), this.now.getTime()));
      decision = this.reconcile(spec);
    }
    return decision;
  }

  weights(): number[] {
    return this.applied.filter((i) => i.type === 'setWeight').map((i) => (i as { weight: number }).weight);
  }

  events(): string[] {
    return this.applied.filter((i) => i.type === 'emitEvent').map((i) => (i.type === 'emitEvent' ? i.event.kind : ''));
  }

  of<T extends Intent['type']>(type: T): Extract<Intent, { type: T }>[] {
    return this.applied.filter((i): i is Extract<Intent, { type: T }> => i.type === type);
  }
}

/** A world where `digest` already runs as stable (first deploy done). */
export function worldWithStable(digest: string, options: WorldOptions = {}, strategy?: Strategy): World {
  const world = new World(options);
  world.runUntilSettled(specOf(digest, strategy));
  world.applied = [];
  return world;
}
