/**
 * Wall-clock time in an IANA time zone without a date library: Intl gives the offset at an instant,
 * and a local date-time resolves to an instant the way Temporal's `disambiguation: 'compatible'` does:
 * an ambiguous time (the repeated hour when clocks fall back) is the earlier instant, a time that does
 * not exist (the hour skipped when clocks spring forward) moves forward by the length of the gap.
 */
import { SlipwayError } from '../errors.js';

export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new SlipwayError('BAD_TIME_ZONE', `"${timeZone}" is not an IANA time zone (e.g. Europe/Berlin, America/New_York, UTC)`, 'stalling', {
        timeZone,
      });
    }
    formatters.set(timeZone, f);
  }
  return f;
}

export function assertTimeZone(timeZone: string): void {
  formatter(timeZone);
}

export function wallTimeAt(instant: number, timeZone: string): WallTime {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(instant))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return { year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour!, minute: parts.minute!, second: parts.second! };
}

function wallAsUtc(w: WallTime): number {
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
}

/** Offset of `timeZone` from UTC at `instant`, in milliseconds (positive east of Greenwich). */
export function offsetAt(instant: number, timeZone: string): number {
  const wholeSeconds = Math.floor(instant / 1000) * 1000;
  return wallAsUtc(wallTimeAt(wholeSeconds, timeZone)) - wholeSeconds;
}

const DAY = 86_400_000;

/** The instant a wall-clock time names in `timeZone` (compatible disambiguation, see the file comment). */
export function instantOf(wall: WallTime, timeZone: string): number {
  const asUtc = wallAsUtc(wall);
  const offsets = [...new Set([offsetAt(asUtc - DAY, timeZone), offsetAt(asUtc, timeZone), offsetAt(asUtc + DAY, timeZone)])];
  const matches = offsets
    .map((o) => asUtc - o)
    .filter((t) => wallAsUtc(wallTimeAt(t, timeZone)) === asUtc)
    .sort((a, b) => a - b);
  if (matches.length > 0) return matches[0]!;
  // In a gap: read the wall time with the offset in force before the transition, which lands after it.
  return asUtc - offsetAt(asUtc - DAY, timeZone);
}

const LOCAL_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * Parse `2026-12-20T00:00` (a local date-time in `timeZone`). A value that carries its own offset
 * (`...Z`, `...+01:00`) is taken as that exact instant.
 */
export function parseLocalDateTime(text: string, timeZone: string): number {
  const m = LOCAL_DATE_TIME.exec(text.trim());
  if (!m) {
    throw new SlipwayError('BAD_DATE_TIME', `"${text}" is not a date-time like 2026-12-20T00:00 (local time in ${timeZone})`, 'stalling', {
      value: text,
    });
  }
  const wall: WallTime = {
    year: Number(m[1]),
    month: Number(m[2]),
    day: Number(m[3]),
    hour: Number(m[4]),
    minute: Number(m[5]),
    second: Number(m[6] ?? 0),
  };
  const check = new Date(Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second));
  if (
    check.getUTCMonth() !== wall.month - 1 ||
    check.getUTCDate() !== wall.day ||
    wall.hour > 23 ||
    wall.minute > 59 ||
    wall.second > 59
  ) {
    throw new SlipwayError('BAD_DATE_TIME', `"${text}" is not a real calendar date-time`, 'stalling', { value: text });
  }
  if (m[7]) return Date.parse(`${text.trim().replace(' ', 'T')}`);
  return instantOf(wall, timeZone);
}

/** `2026-12-20T00:00:00+01:00`: an instant as the wall clock in `timeZone` shows it, with its offset. */
export function formatInZone(instant: number, timeZone: string): string {
  const w = wallTimeAt(instant, timeZone);
  const off = Math.round(offsetAt(instant, timeZone) / 60_000);
  const pad = (n: number, l = 2) => String(n).padStart(l, '0');
  const sign = off < 0 ? '-' : '+';
  const abs = Math.abs(off);
  return `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)}T${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** Add whole calendar days on the wall clock of `timeZone` (a day across a DST change is 23 or 25 hours). */
export function addCalendarDays(instant: number, days: number, timeZone: string): number {
  if (days === 0) return instant;
  const w = wallTimeAt(instant, timeZone);
  const shifted = new Date(Date.UTC(w.year, w.month - 1, w.day + days));
  return instantOf(
    { ...w, year: shifted.getUTCFullYear(), month: shifted.getUTCMonth() + 1, day: shifted.getUTCDate() },
    timeZone,
  ) + (instant % 1000);
}
