/** The controller's own metrics (prom-client), on a registry of its own so tests and embedders do not collide. */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { PHASES, type Phase } from '../rollout/index.js';

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly reconcileDuration = new Histogram({
    name: 'slipway_reconcile_duration_seconds',
    help: 'Time to reconcile one sync of the environments repository (seconds).',
    labelNames: ['trigger', 'result'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly rollouts = new Gauge({
    name: 'slipway_rollouts',
    help: 'Services by rollout phase.',
    labelNames: ['environment', 'phase'],
    registers: [this.registry],
  });
  readonly refusals = new Counter({
    name: 'slipway_refusals_total',
    help: 'Changes refused or held by a gate, by code.',
    labelNames: ['environment', 'code'],
    registers: [this.registry],
  });
  readonly rollbacks = new Counter({
    name: 'slipway_rollbacks_total',
    help: 'Rollouts rolled back (traffic to stable and a revert commit).',
    labelNames: ['environment', 'service'],
    registers: [this.registry],
  });
  readonly syncs = new Counter({
    name: 'slipway_syncs_total',
    help: 'Syncs of the environments repository by trigger and result (unchanged, applied, rejected, error).',
    labelNames: ['trigger', 'result'],
    registers: [this.registry],
  });

  setPhases(environment: string, phases: Phase[]): void {
    for (const phase of PHASES) this.rollouts.set({ environment, phase }, phases.filter((p) => p === phase).length);
  }
}
