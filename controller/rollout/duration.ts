/** Durations as the files write them: `250ms`, `30s`, `5m`, `1h30m`, `2d`. */
import { SlipwayError } from '../../lib/errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /([0-9]+)(ms|s|m|h|d)/g;

export function parseDuration(text: string): number {
  const whole = /^([0-9]+(ms|s|m|h|d))+$/;
  if (!whole.test(text)) {
    throw new SlipwayError('BAD_DURATION', `"${text}" is not a duration; write e.g. 30s, 5m, 1h30m`, 'stalling');
  }
  let total = 0;
  for (const match of text.matchAll(PART)) total += Number(match[1]) * UNIT_MS[match[2]!]!;
  return total;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
