/** The rollout core's data: plain values in, plain values out. No IO, no clock of its own. */
import type { AnalysisSettings, Slos, Strategy } from '../../schemas/index.js';
import type { ServiceObservation, Track, TrackSpec } from '../targets/types.js';
import type { Outcome } from '../analysis/types.js';

/** A closed set. `completed()` says which ones need nothing more from the controller. */
export type Phase = 'Idle' | 'Progressing' | 'Paused' | 'Analyzing' | 'Promoting' | 'Completed' | 'Aborted' | 'RolledBack';

export const PHASES: readonly Phase[] = ['Idle', 'Progressing', 'Paused', 'Analyzing', 'Promoting', 'Completed', 'Aborted', 'RolledBack'];

export function completed(phase: Phase): boolean {
  switch (phase) {
    case 'Idle':
    case 'Completed':
    case 'Aborted':
    case 'RolledBack':
      return true;
    case 'Progressing':
    case 'Paused':
    case 'Analyzing':
    case 'Promoting':
      return false;
  }
}

export type StrategyType = 'rolling' | 'blueGreen' | 'canary';

/** What the gates let through for one service: where the rollout is going and how. */
export interface RolloutSpec {
  digest: string;
  track: TrackSpec;
  strategy: Strategy;
  analysis: { intervalMs: number; warmupMs: number; failureLimit: number; inconclusiveLimit: number };
  /** How long a new track may take to become ready before the rollout counts as failed. */
  progressDeadlineMs: number;
  /** A stable fingerprint of the track spec and strategy: a change with the same digest is a new revision. */
  revision: string;
  /** Handed to the analysis provider as they are. */
  slos: Slos;
  analysisSettings: AnalysisSettings;
}

/** The steps one rollout walks through; every strategy compiles to this list. */
export type PlanStep =
  | { kind: 'setWeight'; weight: number }
  | { kind: 'pause'; durationMs?: number; reason: 'step' | 'approval' | 'keepWarm' }
  | { kind: 'analysis'; intervalMs: number; count: number; label: 'canary' | 'preview' | 'postSwitch'; /** Judged windows start this long after the step. */ warmupMs: number }
  | { kind: 'promote' };

/** How the running rollout reaches its digest. */
export type RolloutMode =
  /** Nothing ran before: start the stable track directly. */
  | 'initial'
  /** Same digest as stable, different configuration (or back to stable after an abort): update stable in place. */
  | 'inPlace'
  /** A second track next to stable, walked through the plan. */
  | 'steps';

export interface AnalysisProgress {
  runs: number;
  passes: number;
  consecutiveFails: number;
  consecutiveInconclusive: number;
  /** The end of the last judged window (the next window starts here). */
  lastWindowEnd?: string;
  pending?: { id: string; start: string; end: string };
  lastVerdict?: { outcome: Outcome; summary: string; at: string };
  /** Too many inconclusive intervals: hold until a person promotes or rolls back. */
  holding?: boolean;
}

export interface Revision {
  digest: string;
  revision: string;
}

export interface RolloutState {
  environment: string;
  service: string;
  phase: Phase;
  /** Counts rollouts of this service; part of every intent id. */
  generation: number;
  intentSeq: number;
  strategy: StrategyType;
  mode?: RolloutMode;
  /** Known-good digest: the canary steps were skipped. */
  fastPath?: boolean;
  desired?: Revision;
  stable?: Revision;
  /** How stable runs, so a restarted controller (or a target that lost it) can put it back. */
  stableTrack?: TrackSpec;
  stepIndex: number;
  stepCount: number;
  stepStartedAt?: string;
  rolloutStartedAt?: string;
  canaryReadyAt?: string;
  canaryWeight: number;
  analysis?: AnalysisProgress;
  /** Set by the API (`promote`), consumed by the next pause or held analysis. */
  promoteRequested?: boolean;
  /** Digests that completed a rollout in this environment, newest last (bounded). */
  healthyDigests: string[];
  message?: string;
  updatedAt?: string;
}

export interface VerdictObservation {
  /** The `runAnalysis` intent this answers. */
  id: string;
  outcome: Outcome;
  summary: string;
}

export interface RolloutObservation {
  target: ServiceObservation;
  verdict?: VerdictObservation;
}

export type RolloutEventKind =
  | 'RolloutStarted'
  | 'TrafficShifted'
  | 'Paused'
  | 'Resumed'
  | 'AnalysisVerdict'
  | 'AnalysisHeld'
  | 'Promoting'
  | 'Completed'
  | 'Superseded'
  | 'RolledBack'
  | 'Aborted';

export interface RolloutEvent {
  kind: RolloutEventKind;
  environment: string;
  service: string;
  digest?: string;
  message: string;
  data?: Record<string, string | number | boolean | null>;
}

interface IntentBase {
  /** `<env>/<service>#<generation>.<seq>`: unique and stable, so a replay after a crash is recognised. */
  id: string;
}

export type Intent =
  | (IntentBase & { type: 'ensureTrack'; track: Track; spec: TrackSpec })
  | (IntentBase & { type: 'setWeight'; weight: number })
  | (IntentBase & { type: 'promote' })
  | (IntentBase & { type: 'removeTrack'; track: Track })
  | (IntentBase & { type: 'runAnalysis'; label: string; start: string; end: string })
  | (IntentBase & { type: 'revert'; badDigest: string; reason: string; summary: string })
  | (IntentBase & { type: 'emitEvent'; event: RolloutEvent });

export type IntentType = Intent['type'];

export interface Decision {
  state: RolloutState;
  intents: Intent[];
  /** When the core next wants to be asked (a pause ending, an analysis interval); absent = on the next change. */
  requeueAt?: string;
}
