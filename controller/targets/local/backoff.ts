/** When to restart a crashed instance, and when restarts have become a crash loop. Pure. */
export interface RestartPolicy {
  /** First restart delay. */
  initialBackoffMs: number;
  /** The delay doubles per consecutive crash up to this cap. */
  maxBackoffMs: number;
  /** An instance that ran at least this long before crashing starts again from the first delay. */
  stableUptimeMs: number;
  /** This many consecutive crashes (none after a stable uptime) make the track failed. */
  crashLoopThreshold: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialBackoffMs: 1_000,
  maxBackoffMs: 60_000,
  stableUptimeMs: 60_000,
  crashLoopThreshold: 5,
};

export interface CrashHistory {
  consecutiveCrashes: number;
}

export interface RestartDecision {
  consecutiveCrashes: number;
  delayMs: number;
  crashLoop: boolean;
}

export function decideRestart(policy: RestartPolicy, history: CrashHistory, uptimeMs: number): RestartDecision {
  const consecutiveCrashes = (uptimeMs >= policy.stableUptimeMs ? 0 : history.consecutiveCrashes) + 1;
  const delayMs = Math.min(policy.initialBackoffMs * 2 ** (consecutiveCrashes - 1), policy.maxBackoffMs);
  return { consecutiveCrashes, delayMs, crashLoop: consecutiveCrashes >= policy.crashLoopThreshold };
}
