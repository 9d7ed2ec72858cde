/**
 * When the controller looks at main: on a node-cron schedule (default every 30 s), at once on a webhook,
 * and whenever a service asked to be woken (a pause ending, an analysis due, a freeze window closing).
 * Triggers that arrive while a sync runs collapse into one more sync after it.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { SlipwayError } from '../../lib/errors.js';
import type { Reconciler } from '../reconcile/reconciler.js';
import type { SyncReport, SyncTrigger } from '../reconcile/types.js';

export const DEFAULT_SCHEDULE = '*/30 * * * * *';
/** Never sleep longer than this between wake-up checks (a clock jump, a lost timer). */
const MAX_SLEEP_MS = 60_000;

export interface SyncLoopOptions {
  reconciler: Reconciler;
  /** node-cron expression (seconds field allowed). */
  schedule?: string;
  onReport?: (report: SyncReport) => void;
  onError?: (err: unknown) => void;
}

export class SyncLoop {
  private task?: ScheduledTask;
  private timer?: NodeJS.Timeout;
  private running?: Promise<SyncReport>;
  private again?: SyncTrigger;
  private stopped = false;
  readonly schedule: string;

  constructor(private readonly options: SyncLoopOptions) {
    this.schedule = options.schedule ?? DEFAULT_SCHEDULE;
    options.reconciler.onWakeUpChanged = () => this.arm();
    if (!cron.validate(this.schedule)) {
      throw new SlipwayError('BAD_SCHEDULE', `"${this.schedule}" is not a cron expression; e.g. "*/30 * * * * *" (every 30 s)`, 'stalling');
    }
  }

  /** Replay what a previous process left half done, sync once, then follow the schedule. */
  async start(): Promise<SyncReport> {
    const r = this.options.reconciler;
    await r.open();
    await r.runDue();
    const report = await r.sync('startup', true);
    this.options.onReport?.(report);
    await r.runDue();
    if (this.stopped) return report;
    this.task = cron.schedule(this.schedule, () => void this.trigger('interval'), { name: 'slipway-sync', noOverlap: true });
    this.arm();
    return report;
  }

  /** Ask for a sync now; concurrent asks share one run plus at most one follow-up. */
  trigger(trigger: SyncTrigger): Promise<SyncReport> {
    if (this.running) {
      this.again = trigger;
      return this.running;
    }
    this.running = (async () => {
      try {
        let report = await this.options.reconciler.sync(trigger);
        this.options.onReport?.(report);
        while (this.again && !this.stopped) {
          const next = this.again;
          delete this.again;
          report = await this.options.reconciler.sync(next);
          this.options.onReport?.(report);
        }
        await this.options.reconciler.runDue();
        return report;
      } finally {
        delete this.running;
        this.arm();
      }
    })();
    this.running.catch((err: unknown) => this.options.onError?.(err));
    return this.running;
  }

  /** Sleep until the earliest wake-up any service asked for. */
  private arm(): void {
    if (this.stopped || !this.task) return;
    if (this.timer) clearTimeout(this.timer);
    const next = this.options.reconciler.nextWakeUp();
    const delay = next ? Math.max(0, Math.min(MAX_SLEEP_MS, next.getTime() - Date.now())) : MAX_SLEEP_MS;
    this.timer = setTimeout(() => {
      void this.options.reconciler
        .runDue()
        .catch((err: unknown) => this.options.onError?.(err))
        .finally(() => this.arm());
    }, delay);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.task) await this.task.destroy();
    await this.running?.catch(() => undefined);
  }
}
