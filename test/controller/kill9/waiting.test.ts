import { defineKillTests } from './harness.js';

defineKillTests([
  { name: 'Paused, waiting for a person', phase: 'Paused' },
  { name: 'Analyzing, between analysis intervals', phase: 'Analyzing' },
  { name: 'Promoting, after the target promoted but before it was recorded', hang: { when: 'after', op: 'promote' } },
]);
