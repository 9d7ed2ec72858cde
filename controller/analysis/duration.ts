import { SlipwayError } from '../../lib/errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `1m30s` → 90000. Throws a stalling error naming the field for anything else. */
export function parseDurationMs(text: string, field = 'duration'): number {
  const re = /([0-9]+)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (text.length === 0 || matched !== text.length) {
    throw new SlipwayError('INVALID_DURATION', `${field}: "${text}" is not a duration (use e.g. 30s, 5m, 1h30m)`, 'stalling', { field, value: text });
  }
  return total;
}
