/**
 * An analysis run across intervals (pure). Each interval's verdict moves the run:
 * - `failureLimit` consecutive fails → `breach` (roll back);
 * - `inconclusiveLimit` consecutive inconclusive verdicts → `hold` with an alert: the step never advances on
 *   missing data, and resumes judging when data returns;
 * - `count` passing intervals → `passed` (the step may advance).
 * An inconclusive interval neither confirms nor clears a failure streak: missing data must not hide a bad canary.
 * With the cumulative (sequential) judge a fail is "beyond the boundary at this look" (judge.ts), so failureLimit
 * is the number of consecutive looks that must be beyond it.
 */
import type { AnalysisSettings } from '../../schemas/index.js';
import type { Verdict } from './types.js';

export interface AnalysisLimits {
  failureLimit: number;
  inconclusiveLimit: number;
  /** Passing intervals needed before the step passes. */
  count: number;
}

// failureLimit 1, as the rollout plan's default (controller/rollout/plan.ts): the sequential judge already controls repeated looks.
export const DEFAULT_ANALYSIS_LIMITS: AnalysisLimits = { failureLimit: 1, inconclusiveLimit: 3, count: 5 };

export function analysisLimits(settings: AnalysisSettings | undefined, count?: number): AnalysisLimits {
  return {
    failureLimit: settings?.failureLimit ?? DEFAULT_ANALYSIS_LIMITS.failureLimit,
    inconclusiveLimit: settings?.inconclusiveLimit ?? DEFAULT_ANALYSIS_LIMITS.inconclusiveLimit,
    count: count ?? DEFAULT_ANALYSIS_LIMITS.count,
  };
}

export type AnalysisPhase = 'running' | 'holding' | 'passed' | 'breached';

export interface AnalysisRun {
  phase: AnalysisPhase;
  intervals: number;
  passes: number;
  fails: number;
  inconclusives: number;
  consecutiveFailures: number;
  consecutiveInconclusive: number;
  /** The verdicts that led to a breach or hold (the last `failureLimit`/`inconclusiveLimit`), for the message. */
  recent: Verdict[];
}

export function startAnalysisRun(): AnalysisRun {
  return { phase: 'running', intervals: 0, passes: 0, fails: 0, inconclusives: 0, consecutiveFailures: 0, consecutiveInconclusive: 0, recent: [] };
}

export type AnalysisDecision =
  | { kind: 'continue' }
  | { kind: 'passed' }
  | { kind: 'breach'; reason: string; verdict: Verdict }
  | { kind: 'hold'; alert: string; verdict: Verdict };

/** A finished run (passed or breached) ignores further verdicts and repeats its decision. */
export function isFinished(run: AnalysisRun): boolean {
  return run.phase === 'passed' || run.phase === 'breached';
}

export function recordVerdict(run: AnalysisRun, verdict: Verdict, limits: AnalysisLimits): { run: AnalysisRun; decision: AnalysisDecision } {
  if (isFinished(run)) {
    const last = run.recent[run.recent.length - 1] ?? verdict;
    return { run, decision: run.phase === 'passed' ? { kind: 'passed' } : { kind: 'breach', reason: breachReason(run, limits), verdict: last } };
  }
  const next: AnalysisRun = { ...run, intervals: run.intervals + 1, recent: [...run.recent, verdict].slice(-Math.max(limits.failureLimit, limits.inconclusiveLimit)) };
  switch (verdict.outcome) {
    case 'fail':
      next.fails++;
      next.consecutiveFailures++;
      next.consecutiveInconclusive = 0;
      if (next.consecutiveFailures >= limits.failureLimit) {
        next.phase = 'breached';
        return { run: next, decision: { kind: 'breach', reason: breachReason(next, limits), verdict } };
      }
      next.phase = 'running';
      return { run: next, decision: { kind: 'continue' } };
    case 'inconclusive':
      next.inconclusives++;
      next.consecutiveInconclusive++;
      if (next.consecutiveInconclusive >= limits.inconclusiveLimit) {
        next.phase = 'holding';
        return {
          run: next,
          decision: {
            kind: 'hold',
            alert: `analysis inconclusive for ${next.consecutiveInconclusive} consecutive intervals, holding the rollout: ${verdict.summary}`,
            verdict,
          },
        };
      }
      return { run: next, decision: { kind: 'continue' } };
    case 'pass':
      next.passes++;
      next.consecutiveFailures = 0;
      next.consecutiveInconclusive = 0;
      if (next.passes >= limits.count) {
        next.phase = 'passed';
        return { run: next, decision: { kind: 'passed' } };
      }
      next.phase = 'running';
      return { run: next, decision: { kind: 'continue' } };
    default: {
      const never: never = verdict.outcome;
      throw new Error(`unknown verdict outcome ${String(never)}`);
    }
  }
}

function breachReason(run: AnalysisRun, limits: AnalysisLimits): string {
  const last = run.recent[run.recent.length - 1];
  return `${limits.failureLimit} consecutive failed analysis intervals${last ? `: ${last.summary}` : ''}`;
}
