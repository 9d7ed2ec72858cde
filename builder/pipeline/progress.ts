/**
 * Live progress of a pipeline run. On a terminal: one line redrawn in place with the running stage,
 * its shard count and the elapsed time, and a line per finished stage. Elsewhere (CI logs, pipes):
 * only the line per started and finished stage.
 */
import { formatMs, type Clock, type PipelineEvent, type StageResult } from './run.js';

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface ProgressReporter {
  onEvent(event: PipelineEvent): void;
  stop(): void;
}

const MARK: Record<StageResult['status'], string> = { succeeded: 'ok', failed: 'FAILED', 'timed-out': 'TIMED OUT', skipped: 'skipped', cancelled: 'cancelled' };

export function stageLine(result: StageResult): string {
  const shards = result.shards.length > 1 ? ` ${result.shards.length} shards` : '';
  const code = result.status === 'failed' && result.exitCode !== null ? ` exit ${result.exitCode}` : '';
  const reason = result.status === 'skipped' && result.reason ? ` (${result.reason})` : '';
  return `${result.name.padEnd(12)} ${MARK[result.status].padEnd(9)} ${formatMs(result.durationMs).padStart(7)}${shards}${code}${reason}`;
}

export function createProgressReporter(stream: ProgressStream, opts: { clock?: Clock; intervalMs?: number } = {}): ProgressReporter {
  const clock = opts.clock ?? { now: () => Date.now() };
  const tty = Boolean(stream.isTTY);
  let running: { stage: string; index: number; total: number; shards: number; at: number } | undefined;
  let timer: NodeJS.Timeout | undefined;

  const clear = () => {
    if (tty) stream.write('\r\x1b[2K');
  };
  const draw = () => {
    if (!running) return;
    const shards = running.shards > 1 ? ` (${running.shards} shards)` : '';
    clear();
    stream.write(`[${running.index + 1}/${running.total}] ${running.stage}${shards} ${formatMs(clock.now() - running.at)}`);
  };

  return {
    onEvent(event) {
      if (event.type === 'output') return;
      if (event.type === 'stage-started') {
        running = { stage: event.stage, index: event.index, total: event.total, shards: event.shards, at: event.at };
        if (tty) {
          draw();
          clearInterval(timer);
          timer = setInterval(draw, opts.intervalMs ?? 250);
          timer.unref();
        } else {
          stream.write(`[${event.index + 1}/${event.total}] ${event.stage} started${event.shards > 1 ? ` (${event.shards} shards)` : ''}\n`);
        }
        return;
      }
      clearInterval(timer);
      timer = undefined;
      running = undefined;
      clear();
      stream.write(`[${event.index + 1}/${event.total}] ${stageLine(event.result)}\n`);
    },
    stop() {
      clearInterval(timer);
      if (running) clear();
      running = undefined;
    },
  };
}
