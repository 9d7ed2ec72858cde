/**
 * Drift is only found if someone looks: the reconcile loop touches a service when git changes, so a hand edit
 * to a settled service would stand forever. This looks at every service on an interval, puts back what was
 * changed, and hands each finding to `onDrift` (the controller writes it to the audit log and metrics).
 */
import type { ServiceRef } from '../types.js';
import type { DriftReport } from './target.js';

export interface DriftWatcherOptions {
  target: { repairDrift(ref: ServiceRef): Promise<DriftReport[]> };
  /** The services to look at now (e.g. those of the environments this replica's shards own). */
  services: () => ServiceRef[] | Promise<ServiceRef[]>;
  onDrift: (report: DriftReport) => void;
  onError?: (ref: ServiceRef, err: unknown) => void;
  intervalMs?: number;
}

export interface DriftWatcher {
  /** One pass over every service; returns what was found (and put back). */
  checkOnce(): Promise<DriftReport[]>;
  start(): void;
  stop(): void;
}

export function createDriftWatcher(options: DriftWatcherOptions): DriftWatcher {
  const intervalMs = options.intervalMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  let running = false;

  async function checkOnce(): Promise<DriftReport[]> {
    const found: DriftReport[] = [];
    for (const ref of await options.services()) {
      try {
        for (const r of await options.target.repairDrift(ref)) {
          found.push(r);
          options.onDrift(r);
        }
      } catch (err) {
        // One service failing to repair (RBAC, a deleted namespace) must not stop the others.
        options.onError?.(ref, err);
      }
    }
    return found;
  }

  return {
    checkOnce,
    start() {
      if (timer) return;
      timer = setInterval(() => {
        if (running) return;
        running = true;
        checkOnce()
          .catch(() => undefined)
          .finally(() => (running = false));
      }, intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
