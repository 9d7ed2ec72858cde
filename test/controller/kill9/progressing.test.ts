import { defineKillTests } from './harness.js';

defineKillTests([
  { name: 'Progressing, before the canary instances were asked for', hang: { when: 'before', op: 'ensureTrack', track: 'canary' } },
  { name: 'Progressing, after the 20% shift reached the target but before it was recorded', hang: { when: 'after', op: 'setWeight', weight: 20 } },
  { name: 'Progressing, before the 50% shift reached the target', hang: { when: 'before', op: 'setWeight', weight: 50 } },
]);
