/**
 * The rollout state machine: `decide(state, observation, now, spec) → { state, intents, requeueAt }`.
 *
 * Pure: it never reads a clock, a file or a socket. Decisions are collected on a draft and returned once;
 * the shell persists the new state with its intents before applying them, so a controller killed at any
 * moment replays the same idempotent intents instead of deciding (and shifting traffic) again.
 * Timestamps (step start, last analysis window) live in the state, so a decision made twice at the same
 * `now` is the same decision and the loop never spins.
 */
import type { ServiceObservation, TrackStatus } from '../targets/types.js';
import { planFor, strategyOf } from './plan.js';
import {
  completed,
  type Decision,
  type Intent,
  type PlanStep,
  type RolloutEvent,
  type RolloutObservation,
  type RolloutSpec,
  type RolloutState,
} from './types.js';

const HEALTHY_HISTORY = 20;
/** While waiting for instances to become ready, look again this often. */
const READY_POLL_MS = 1000;

export function initialState(environment: string, service: string): RolloutState {
  return {
    environment,
    service,
    phase: 'Idle',
    generation: 0,
    intentSeq: 0,
    strategy: 'rolling',
    stepIndex: 0,
    stepCount: 0,
    canaryWeight: 0,
    healthyDigests: [],
  };
}

type Intention = Intent extends infer I ? (I extends Intent ? Omit<I, 'id'> : never) : never;

class Draft {
  readonly state: RolloutState;
  readonly intents: Intent[] = [];
  requeueAt?: number;
  private readonly before: string;

  constructor(
    prev: RolloutState,
    readonly now: Date,
  ) {
    this.state = structuredClone(prev);
    this.before = JSON.stringify(prev);
  }

  emit(intent: Intention): void {
    this.state.intentSeq += 1;
    const id = `${this.state.environment}/${this.state.service}#${this.state.generation}.${this.state.intentSeq}`;
    this.intents.push({ ...intent, id } as Intent);
  }

  event(kind: RolloutEvent['kind'], message: string, data?: RolloutEvent['data']): void {
    const s = this.state;
    this.emit({
      type: 'emitEvent',
      event: { kind, environment: s.environment, service: s.service, ...(s.desired ? { digest: s.desired.digest } : {}), message, ...(data ? { data } : {}) },
    });
  }

  requeue(at: number): void {
    if (this.requeueAt === undefined || at < this.requeueAt) this.requeueAt = at;
  }

  get nowIso(): string {
    return this.now.toISOString();
  }

  done(): Decision {
    if (this.intents.length > 0 || JSON.stringify(this.state) !== this.before) this.state.updatedAt = this.nowIso;
    return {
      state: this.state,
      intents: this.intents,
      ...(this.requeueAt !== undefined ? { requeueAt: new Date(this.requeueAt).toISOString() } : {}),
    };
  }
}

function short(digest: string): string {
  return digest.startsWith('sha256:') ? digest.slice(7, 19) : digest.slice(0, 12);
}

function isReady(status: TrackStatus | undefined, spec: RolloutSpec): boolean {
  return !!status && status.digest === spec.digest && status.readyReplicas >= spec.track.replicas && !status.failed;
}

/** Start a rollout towards `spec`, from whatever stable runs now. */
function start(d: Draft, spec: RolloutSpec, target: ServiceObservation): void {
  const s = d.state;
  // A first version that never became ready is not a stable to canary against: replace it.
  const stableDigest = s.stable?.digest ?? (s.mode === 'initial' ? undefined : target.stable?.digest);
  s.generation += 1;
  s.intentSeq = 0;
  s.desired = { digest: spec.digest, revision: spec.revision };
  s.strategy = strategyOf(spec);
  s.stepIndex = 0;
  s.rolloutStartedAt = d.nowIso;
  delete s.stepStartedAt;
  delete s.canaryReadyAt;
  delete s.analysis;
  delete s.promoteRequested;
  s.canaryWeight = 0;
  s.phase = 'Progressing';
  if (!stableDigest) {
    s.mode = 'initial';
    s.fastPath = false;
    s.stepCount = 1;
    d.emit({ type: 'ensureTrack', track: 'stable', spec: spec.track });
    s.message = `starting ${short(spec.digest)} (first version of this service here)`;
  } else if (stableDigest === spec.digest) {
    s.mode = 'inPlace';
    s.fastPath = false;
    s.stepCount = 1;
    d.emit({ type: 'ensureTrack', track: 'stable', spec: spec.track });
    s.message = `updating stable ${short(spec.digest)} in place`;
  } else {
    s.mode = 'steps';
    s.fastPath = s.healthyDigests.includes(spec.digest);
    s.stepCount = planFor(spec, s.fastPath).length;
    d.emit({ type: 'ensureTrack', track: 'canary', spec: spec.track });
    s.message = s.fastPath
      ? `${short(spec.digest)} already ran healthy here: skipping the ${s.strategy} steps`
      : `starting ${s.strategy} rollout of ${short(spec.digest)} next to stable ${short(stableDigest)}`;
  }
  d.event('RolloutStarted', s.message, { mode: s.mode, fastPath: s.fastPath ?? false, strategy: s.strategy });
  d.requeue(d.now.getTime() + READY_POLL_MS);
}

/** Stop the running rollout without git involvement (a newer digest replaced it): traffic back to stable. */
function supersede(d: Draft, next: RolloutSpec): void {
  const s = d.state;
  if (s.mode === 'steps' && s.desired) {
    d.emit({ type: 'setWeight', weight: 0 });
    d.emit({ type: 'removeTrack', track: 'canary' });
  }
  d.event('Superseded', `rollout of ${s.desired ? short(s.desired.digest) : '?'} aborted: ${short(next.digest)} arrived`, {
    phase: s.phase,
    step: s.stepIndex,
  });
  s.phase = 'Aborted';
  s.canaryWeight = 0;
}

/** A breach: all traffic to stable at once, stop the canary, ask git to revert. */
function rollBack(d: Draft, reason: string, summary: string): void {
  const s = d.state;
  const bad = s.desired!.digest;
  d.emit({ type: 'setWeight', weight: 0 });
  d.emit({ type: 'removeTrack', track: 'canary' });
  d.emit({ type: 'revert', badDigest: bad, reason, summary });
  s.phase = 'RolledBack';
  s.canaryWeight = 0;
  s.message = `rolled back ${short(bad)}: ${reason}`;
  d.event('RolledBack', s.message, { reason, summary });
}

function finish(d: Draft, spec: RolloutSpec): void {
  const s = d.state;
  s.phase = 'Completed';
  s.stable = { ...s.desired! };
  s.stableTrack = spec.track;
  s.canaryWeight = 0;
  s.healthyDigests = [...s.healthyDigests.filter((x) => x !== s.desired!.digest), s.desired!.digest].slice(-HEALTHY_HISTORY);
  s.message = `${short(s.desired!.digest)} is stable`;
  delete s.analysis;
  delete s.promoteRequested;
  d.event('Completed', s.message);
}

function advance(d: Draft): void {
  const s = d.state;
  s.stepIndex += 1;
  s.stepStartedAt = d.nowIso;
  delete s.analysis;
}

/** Walk plan steps from the current one until one has to wait. */
function walk(d: Draft, spec: RolloutSpec, obs: RolloutObservation): void {
  const s = d.state;
  const plan = planFor(spec, s.fastPath ?? false);
  const now = d.now.getTime();
  for (let guard = 0; guard <= plan.length; guard++) {
    const step: PlanStep | undefined = plan[s.stepIndex];
    if (!step) return;
    const stepStart = Date.parse(s.stepStartedAt ?? d.nowIso);
    switch (step.kind) {
      case 'setWeight': {
        s.phase = 'Progressing';
        if (s.canaryWeight !== step.weight) {
          d.emit({ type: 'setWeight', weight: step.weight });
          d.event('TrafficShifted', `${step.weight}% of traffic on ${short(spec.digest)}`, { weight: step.weight, step: s.stepIndex });
          s.canaryWeight = step.weight;
        }
        advance(d);
        continue;
      }
      case 'pause': {
        if (s.promoteRequested) {
          delete s.promoteRequested;
          d.event('Resumed', `pause at step ${s.stepIndex + 1} ended by promote`);
          advance(d);
          continue;
        }
        if (step.durationMs !== undefined && now >= stepStart + step.durationMs) {
          advance(d);
          continue;
        }
        if (s.phase !== 'Paused') {
          const why =
            step.reason === 'approval'
              ? 'preview ready: waiting for promote to switch traffic'
              : step.reason === 'keepWarm'
                ? 'switched: keeping the previous version warm'
                : step.durationMs === undefined
                  ? 'paused until promoted'
                  : `paused for ${Math.round(step.durationMs / 1000)}s`;
          s.phase = 'Paused';
          s.message = why;
          d.event('Paused', why, { step: s.stepIndex });
        }
        if (step.durationMs !== undefined) d.requeue(stepStart + step.durationMs);
        return;
      }
      case 'analysis': {
        s.phase = 'Analyzing';
        const a = (s.analysis ??= { runs: 0, passes: 0, consecutiveFails: 0, consecutiveInconclusive: 0 });
        if (a.pending && obs.verdict?.id === a.pending.id) {
          const v = obs.verdict;
          a.runs += 1;
          a.lastWindowEnd = a.pending.end;
          a.lastVerdict = { outcome: v.outcome, summary: v.summary, at: d.nowIso };
          delete a.pending;
          d.event('AnalysisVerdict', `${step.label} analysis ${a.runs}/${step.count}: ${v.outcome} (${v.summary})`, {
            outcome: v.outcome,
            run: a.runs,
          });
          if (v.outcome === 'pass') {
            a.passes += 1;
            a.consecutiveFails = 0;
            a.consecutiveInconclusive = 0;
          } else if (v.outcome === 'fail') {
            a.consecutiveFails += 1;
            if (a.consecutiveFails >= spec.analysis.failureLimit) {
              rollBack(d, `${step.label} analysis failed ${a.consecutiveFails} times in a row`, v.summary);
              return;
            }
          } else {
            a.consecutiveInconclusive += 1;
            if (a.consecutiveInconclusive >= spec.analysis.inconclusiveLimit && !a.holding) {
              a.holding = true;
              s.message = `analysis inconclusive ${a.consecutiveInconclusive} times: holding for a person (promote or rollback)`;
              d.event('AnalysisHeld', s.message);
            }
          }
          if (a.passes >= step.count) {
            advance(d);
            continue;
          }
        }
        if (a.holding) {
          if (s.promoteRequested) {
            delete s.promoteRequested;
            d.event('Resumed', 'held analysis accepted by promote');
            advance(d);
            continue;
          }
          s.phase = 'Paused';
          return;
        }
        if (a.pending) return;
        const windowStart = a.lastWindowEnd ? Date.parse(a.lastWindowEnd) : Date.parse(s.stepStartedAt ?? d.nowIso) + step.warmupMs;
        const due = windowStart + step.intervalMs;
        if (now >= due) {
          const window = { start: new Date(windowStart).toISOString(), end: new Date(due).toISOString() };
          d.emit({ type: 'runAnalysis', label: step.label, ...window });
          a.pending = { id: d.intents[d.intents.length - 1]!.id, ...window };
          s.message = `${step.label} analysis ${a.runs + 1}/${step.count}`;
        } else {
          s.message = `${step.label} analysis ${a.runs + 1}/${step.count} at ${new Date(due).toISOString()}`;
          d.requeue(due);
        }
        return;
      }
      case 'promote': {
        s.phase = 'Promoting';
        s.message = `promoting ${short(spec.digest)} to stable`;
        d.emit({ type: 'promote' });
        d.event('Promoting', s.message);
        d.requeue(now + READY_POLL_MS);
        return;
      }
    }
  }
}

function canaryFailure(obs: RolloutObservation, spec: RolloutSpec, s: RolloutState, now: number): string | undefined {
  const canary = obs.target.canary;
  if (canary?.failed && canary.digest === spec.digest) return `canary instances failed: ${canary.failed}`;
  if (!s.canaryReadyAt && now - Date.parse(s.rolloutStartedAt!) > spec.progressDeadlineMs) {
    return `canary not ready within ${Math.round(spec.progressDeadlineMs / 1000)}s`;
  }
  return undefined;
}

/**
 * A target that lost what the rollout had set up (a restarted local target starts without instances, a
 * proxy starts at weight 0) gets it back as it was, before any step moves on: the rollout resumes at the
 * same step instead of failing its progress deadline or shifting traffic anew. Returns true while the
 * canary is being re-created.
 */
function restoreLostTracks(d: Draft, spec: RolloutSpec, obs: RolloutObservation): boolean {
  const s = d.state;
  if (!s.canaryReadyAt) return false;
  if (s.stableTrack && !obs.target.stable) d.emit({ type: 'ensureTrack', track: 'stable', spec: s.stableTrack });
  const canary = obs.target.canary;
  if (!canary || canary.digest !== spec.digest) {
    d.emit({ type: 'ensureTrack', track: 'canary', spec: spec.track });
    s.message = `the target lost the canary of ${short(spec.digest)}: re-creating it at step ${s.stepIndex + 1}`;
    return true;
  }
  if (!isReady(canary, spec)) return !canary.failed;
  // Only a weight that fell back to 0 is put back: a target that reports an approximate split (replica
  // ratios) must not make the core re-send the same weight on every decision.
  if (obs.target.canaryWeight === 0 && s.canaryWeight > 0) d.emit({ type: 'setWeight', weight: s.canaryWeight });
  return false;
}

/**
 * One decision. `spec` is what the gates let through for this service (undefined: nothing is desired yet).
 */
export function decide(prev: RolloutState, obs: RolloutObservation, now: Date, spec: RolloutSpec | undefined): Decision {
  const d = new Draft(prev, now);
  const s = d.state;
  const t = now.getTime();
  if (!spec) return d.done();

  // A promotion that the target has already carried out settles before anything else is looked at.
  if (s.phase === 'Promoting' && s.desired && obs.target.stable?.digest === s.desired.digest && !obs.target.canary) {
    finish(d, spec);
  }

  const isNewTarget = !s.desired || s.desired.digest !== spec.digest || s.desired.revision !== spec.revision;
  if (isNewTarget) {
    if (!completed(s.phase)) supersede(d, spec);
    start(d, spec, obs.target);
    return d.done();
  }

  switch (s.phase) {
    case 'Idle':
    case 'Aborted':
    case 'RolledBack':
      // Waiting for git: a rolled-back digest stays out until main changes (the revert arrives).
      return d.done();
    case 'Completed': {
      const stable = obs.target.stable;
      if (!stable || stable.digest !== spec.digest) {
        // Drift (an instance set vanished, a target restarted empty): put stable back.
        d.emit({ type: 'ensureTrack', track: 'stable', spec: spec.track });
        s.message = `stable ${short(spec.digest)} was missing from the target: restoring it`;
      }
      return d.done();
    }
    case 'Progressing':
    case 'Paused':
    case 'Analyzing':
    case 'Promoting':
      break;
  }

  if (s.mode === 'initial' || s.mode === 'inPlace') {
    const stable = obs.target.stable;
    if (isReady(stable, spec)) {
      finish(d, spec);
    } else if (stable?.failed && stable.digest === spec.digest) {
      s.phase = 'Aborted';
      s.message = `stable instances of ${short(spec.digest)} failed: ${stable.failed}`;
      d.event('Aborted', s.message);
    } else if (t - Date.parse(s.rolloutStartedAt!) > spec.progressDeadlineMs) {
      s.phase = 'Aborted';
      s.message = `${short(spec.digest)} not ready within ${Math.round(spec.progressDeadlineMs / 1000)}s`;
      d.event('Aborted', s.message);
    } else {
      d.requeue(t + READY_POLL_MS);
    }
    return d.done();
  }

  if (s.phase === 'Promoting') {
    // Promote was applied but is not observed yet: look again shortly.
    d.requeue(t + READY_POLL_MS);
    return d.done();
  }

  if (restoreLostTracks(d, spec, obs)) {
    d.requeue(t + READY_POLL_MS);
    return d.done();
  }
  const failure = canaryFailure(obs, spec, s, t);
  if (failure) {
    rollBack(d, failure, failure);
    return d.done();
  }
  if (!s.canaryReadyAt) {
    if (!isReady(obs.target.canary, spec)) {
      d.requeue(t + READY_POLL_MS);
      return d.done();
    }
    s.canaryReadyAt = d.nowIso;
    s.stepStartedAt = d.nowIso;
  }
  walk(d, spec, obs);
  return d.done();
}

/** What a person's `promote` does: accepted only where a rollout waits for one. */
export function requestPromote(state: RolloutState): { ok: true; state: RolloutState } | { ok: false; reason: string } {
  if (state.phase !== 'Paused') {
    return { ok: false, reason: `nothing to promote: the rollout is ${state.phase}, not paused` };
  }
  return { ok: true, state: { ...state, promoteRequested: true } };
}
