/**
 * Freeze windows, evaluated purely: `activeWindows(windows, at)` and `nextWindow(windows, at)`.
 *
 * - A fixed window runs from `start` (inclusive) to `end` (exclusive), both local date-times in its zone.
 * - A recurring window opens at each time its five-field cron expression names on the wall clock of its
 *   zone and stays open for `duration`. Hours, minutes and seconds of a duration are elapsed time
 *   (`1h` is always 60 minutes, even across a fall-back hour); days are calendar days on the wall
 *   clock (`2d` from Friday 18:00 ends Sunday 18:00 local even when a DST change happens in between).
 * - A cron time that does not exist that day (clocks spring forward over it) opens the window after the
 *   gap (02:30 becomes 03:30 when 02:00 jumps to 03:00); a cron time that happens twice (clocks fall
 *   back) opens it once, at the first.
 */
import { CronExpressionParser } from 'cron-parser';
import type { FixedFreezeWindow, FreezeWindow, RecurringFreezeWindow } from '../../schemas/index.js';
import { SlipwayError } from '../errors.js';
import { addCalendarDays, assertTimeZone, instantOf, parseLocalDateTime, wallTimeAt } from './zoned.js';

export interface WindowOccurrence {
  name: string;
  reason?: string;
  kind: 'fixed' | 'recurring';
  timeZone: string;
  start: Date;
  /** Exclusive. */
  end: Date;
}

interface ParsedDuration {
  days: number;
  elapsedMs: number;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(text: string): ParsedDuration {
  const re = /([0-9]+)(ms|s|m|h|d)/gy;
  let days = 0;
  let elapsedMs = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    consumed = re.lastIndex;
    if (m[2] === 'd') days += Number(m[1]);
    else elapsedMs += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  if (consumed !== text.length || text.length === 0 || (days === 0 && elapsedMs === 0)) {
    throw new SlipwayError('BAD_DURATION', `"${text}" is not a positive duration like 30m, 1h30m or 2d`, 'stalling', { value: text });
  }
  return { days, elapsedMs };
}

function isRecurring(w: FreezeWindow): w is RecurringFreezeWindow {
  return 'cron' in w;
}

function endOf(start: number, d: ParsedDuration, timeZone: string): number {
  return addCalendarDays(start, d.days, timeZone) + d.elapsedMs;
}

function fail(w: FreezeWindow, err: unknown): never {
  const detail = err instanceof Error ? err.message : String(err);
  throw new SlipwayError('BAD_FREEZE_WINDOW', `freeze window "${w.name}": ${detail}`, 'stalling', { window: w.name });
}

function fixedOccurrence(w: FixedFreezeWindow): WindowOccurrence {
  try {
    assertTimeZone(w.timeZone);
    const start = parseLocalDateTime(w.start, w.timeZone);
    const end = parseLocalDateTime(w.end, w.timeZone);
    if (end <= start) throw new Error(`end ${w.end} is not after start ${w.start}`);
    return { name: w.name, reason: w.reason, kind: 'fixed', timeZone: w.timeZone, start: new Date(start), end: new Date(end) };
  } catch (err) {
    fail(w, err);
  }
}

/** True when `instant` is the first time the wall clock of `timeZone` shows its reading (not the repeat). */
function isFirstReading(instant: number, timeZone: string): boolean {
  return instantOf(wallTimeAt(instant, timeZone), timeZone) === instant - (instant % 1000);
}

/** Window openings of a recurring window strictly after `after`, in order. */
function* openings(w: RecurringFreezeWindow, after: number): Generator<number> {
  let iterator;
  try {
    assertTimeZone(w.timeZone);
    if (w.cron.trim().split(/\s+/).length !== 5) throw new Error(`cron "${w.cron}" must have five fields (minute hour day month weekday)`);
    iterator = CronExpressionParser.parse(w.cron, { currentDate: new Date(after), tz: w.timeZone });
  } catch (err) {
    fail(w, err);
  }
  for (;;) {
    let t: number;
    try {
      t = iterator.next().getTime();
    } catch {
      return;
    }
    if (isFirstReading(t, w.timeZone)) yield t;
  }
}

const MAX_STEPS = 200_000;

function recurringActive(w: RecurringFreezeWindow, at: number): WindowOccurrence | undefined {
  const duration = safeDuration(w);
  // Every opening that can still be open at `at` lies after this bound (a calendar day is at most 25 h).
  const lookback = duration.days * 25 * 3_600_000 + duration.elapsedMs + 60_000;
  let latest: { start: number; end: number } | undefined;
  let steps = 0;
  for (const start of openings(w, at - lookback - 1)) {
    if (start > at || ++steps > MAX_STEPS) break;
    const end = endOf(start, duration, w.timeZone);
    if (end > at && (!latest || end > latest.end)) latest = { start, end };
  }
  if (!latest) return undefined;
  return { name: w.name, reason: w.reason, kind: 'recurring', timeZone: w.timeZone, start: new Date(latest.start), end: new Date(latest.end) };
}

function safeDuration(w: RecurringFreezeWindow): ParsedDuration {
  try {
    return parseDuration(w.duration);
  } catch (err) {
    fail(w, err);
  }
}

/** Every window in force at `at` (start <= at < end), the one that ends last first. */
export function activeWindows(windows: readonly FreezeWindow[], at: Date): WindowOccurrence[] {
  const t = at.getTime();
  const out: WindowOccurrence[] = [];
  for (const w of windows) {
    if (isRecurring(w)) {
      const o = recurringActive(w, t);
      if (o) out.push(o);
    } else {
      const o = fixedOccurrence(w);
      if (o.start.getTime() <= t && t < o.end.getTime()) out.push(o);
    }
  }
  return out.sort((a, b) => b.end.getTime() - a.end.getTime() || a.name.localeCompare(b.name));
}

/** The window that opens soonest strictly after `at` (undefined when none ever will). */
export function nextWindow(windows: readonly FreezeWindow[], at: Date): WindowOccurrence | undefined {
  const t = at.getTime();
  let best: WindowOccurrence | undefined;
  for (const w of windows) {
    let o: WindowOccurrence | undefined;
    if (isRecurring(w)) {
      const duration = safeDuration(w);
      const first = openings(w, t).next();
      if (!first.done) {
        o = { name: w.name, reason: w.reason, kind: 'recurring', timeZone: w.timeZone, start: new Date(first.value), end: new Date(endOf(first.value, duration, w.timeZone)) };
      }
    } else {
      const f = fixedOccurrence(w);
      if (f.start.getTime() > t) o = f;
    }
    if (o && (!best || o.start.getTime() < best.start.getTime())) best = o;
  }
  return best;
}

/** When every window in force at `at` is over (windows that chain or overlap are followed to the end). */
export function frozenUntil(windows: readonly FreezeWindow[], at: Date): Date | undefined {
  let until: Date | undefined;
  let probe = at;
  for (let i = 0; i < 1000; i++) {
    const active = activeWindows(windows, probe);
    if (active.length === 0) break;
    until = active[0]!.end;
    probe = until;
  }
  return until;
}

export type FreezeVerdict =
  | { frozen: false; next?: WindowOccurrence }
  | { frozen: true; window: WindowOccurrence; until: Date; next?: WindowOccurrence };

/**
 * Is a change frozen at `now`? When it is: the window in force that ends last, and `until`, the instant
 * every chained or overlapping window is over (a merge is allowed again from then on).
 */
export function isFrozen(windows: readonly FreezeWindow[], now: Date): FreezeVerdict {
  const active = activeWindows(windows, now);
  if (active.length === 0) return { frozen: false, next: nextWindow(windows, now) };
  const until = frozenUntil(windows, now)!;
  return { frozen: true, window: active[0]!, until, next: nextWindow(windows, until) };
}
