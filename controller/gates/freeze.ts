/** The freeze calendar the gates ask, built on whatever evaluates windows (lib/freeze). */
import type { FreezeConfig, FreezeWindow } from '../../schemas/index.js';
import type { ActiveFreeze, FreezeCalendar } from '../reconcile/types.js';

export interface WindowEvaluator {
  /** Windows in force at `at`, each with its exclusive end. */
  activeWindows(windows: readonly FreezeWindow[], at: Date): { name: string; reason?: string; end: Date }[];
}

/** The window that holds changes longest wins: a change waits until every open window has closed. */
export function freezeCalendar(evaluator: WindowEvaluator): FreezeCalendar {
  return {
    activeWindow(freeze: FreezeConfig | undefined, now: Date): ActiveFreeze | undefined {
      if (!freeze || freeze.spec.windows.length === 0) return undefined;
      const open = evaluator.activeWindows(freeze.spec.windows, now);
      if (open.length === 0) return undefined;
      const last = open.reduce((a, b) => (b.end > a.end ? b : a));
      return { name: last.name, ...(last.reason ? { reason: last.reason } : {}), endsAt: last.end };
    },
  };
}
