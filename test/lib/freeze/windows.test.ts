import { readFileSync } from 'node:fs';
import { validateFile, type FreezeWindow } from '../../../schemas/index.js';
import { activeWindows, formatInZone, isFrozen, nextWindow, parseLocalDateTime } from '../../../lib/freeze/index.js';
import { isSlipwayError } from '../../../lib/errors.js';

const at = (iso: string) => new Date(iso);

describe('freeze windows', () => {
  describe('a fixed holiday range in Europe/Berlin', () => {
    const holidays: FreezeWindow[] = [
      { name: 'holidays', reason: 'year-end', start: '2026-12-20T00:00', end: '2027-01-04T00:00', timeZone: 'Europe/Berlin' },
    ];

    it('is not in force one second before midnight local time', () => {
      expect(isFrozen(holidays, at('2026-12-19T22:59:59Z')).frozen).toBe(false);
    });

    it('is in force from its start, inclusive, and names the window and its end', () => {
      const v = isFrozen(holidays, at('2026-12-19T23:00:00Z'));
      expect(v).toMatchObject({ frozen: true, window: { name: 'holidays', reason: 'year-end' } });
      expect(v.frozen && v.until.toISOString()).toBe('2027-01-03T23:00:00.000Z');
    });

    it('is over at its end, exclusive', () => {
      expect(isFrozen(holidays, at('2027-01-03T23:00:00Z')).frozen).toBe(false);
      expect(isFrozen(holidays, at('2027-01-03T22:59:59.999Z')).frozen).toBe(true);
    });

    it('is announced as the next window before it starts', () => {
      const v = isFrozen(holidays, at('2026-12-01T00:00:00Z'));
      expect(v.frozen).toBe(false);
      expect(v.next?.start.toISOString()).toBe('2026-12-19T23:00:00.000Z');
    });
  });

  describe('a weekend freeze (Friday 18:00 for 2d15h) across the autumn DST change', () => {
    const weekend: FreezeWindow[] = [{ name: 'weekend', cron: '0 18 * * 5', duration: '2d15h', timeZone: 'Europe/Berlin' }];

    it('opens at 18:00 summer time on Friday', () => {
      expect(isFrozen(weekend, at('2026-10-23T15:59:59Z')).frozen).toBe(false);
      expect(isFrozen(weekend, at('2026-10-23T16:00:00Z')).frozen).toBe(true);
    });

    it('ends at Monday 09:00 winter time, one elapsed hour later than a plain 63 hours', () => {
      const v = isFrozen(weekend, at('2026-10-25T12:00:00Z'));
      expect(v.frozen).toBe(true);
      if (!v.frozen) return;
      expect(v.until.toISOString()).toBe('2026-10-26T08:00:00.000Z');
      expect(formatInZone(v.until.getTime(), 'Europe/Berlin')).toBe('2026-10-26T09:00:00+01:00');
      expect(isFrozen(weekend, at('2026-10-26T08:00:00Z')).frozen).toBe(false);
    });

    it('opens the next Friday at 18:00 winter time', () => {
      expect(nextWindow(weekend, at('2026-10-26T08:00:00Z'))?.start.toISOString()).toBe('2026-10-30T17:00:00.000Z');
    });
  });

  describe('a nightly window at 02:30 local time', () => {
    const nightly: FreezeWindow[] = [{ name: 'backup', cron: '30 2 * * *', duration: '1h', timeZone: 'Europe/Berlin' }];

    it('opens after the gap on the night clocks spring forward over 02:30', () => {
      const next = nextWindow(nightly, at('2026-03-28T12:00:00Z'));
      expect(formatInZone(next!.start.getTime(), 'Europe/Berlin')).toBe('2026-03-29T03:30:00+02:00');
      expect(next!.end.getTime() - next!.start.getTime()).toBe(3_600_000);
    });

    it('opens once, at the first 02:30, on the night clocks fall back', () => {
      expect(isFrozen(nightly, at('2026-10-25T00:30:00Z')).frozen).toBe(true); // 02:30 CEST
      expect(isFrozen(nightly, at('2026-10-25T01:29:59Z')).frozen).toBe(true); // 02:29:59 CET, one hour of elapsed time later
      expect(isFrozen(nightly, at('2026-10-25T01:45:00Z')).frozen).toBe(false); // the repeated 02:45
      expect(activeWindows(nightly, at('2026-10-25T01:30:00Z'))).toEqual([]);
    });
  });

  describe('in America/New_York on the spring-forward day', () => {
    it('resolves a fixed start inside the gap to the instant after it', () => {
      expect(new Date(parseLocalDateTime('2026-03-08T02:30', 'America/New_York')).toISOString()).toBe('2026-03-08T07:30:00.000Z');
    });

    it('measures an hour-based window in elapsed hours across the change', () => {
      const w: FreezeWindow[] = [{ name: 'release', cron: '0 0 8 3 *', duration: '4h', timeZone: 'America/New_York' }];
      const v = isFrozen(w, at('2026-03-08T06:00:00Z'));
      expect(v.frozen && formatInZone(v.until.getTime(), 'America/New_York')).toBe('2026-03-08T05:00:00-04:00');
    });
  });

  describe('when windows overlap or chain', () => {
    const windows: FreezeWindow[] = [
      { name: 'a', start: '2026-06-01T00:00', end: '2026-06-02T00:00', timeZone: 'UTC' },
      { name: 'b', start: '2026-06-02T00:00', end: '2026-06-03T12:00', timeZone: 'UTC' },
    ];

    it('stays frozen until the last chained window ends', () => {
      const v = isFrozen(windows, at('2026-06-01T10:00:00Z'));
      expect(v).toMatchObject({ frozen: true, window: { name: 'a' } });
      expect(v.frozen && v.until.toISOString()).toBe('2026-06-03T12:00:00.000Z');
    });
  });

  describe('with bad input', () => {
    it.each<[string, FreezeWindow, RegExp]>([
      ['an unknown time zone', { name: 'x', cron: '0 0 * * *', duration: '1h', timeZone: 'Mars/Olympus' }, /"x".*IANA time zone/],
      ['a six-field cron', { name: 'y', cron: '0 0 0 * * *', duration: '1h', timeZone: 'UTC' }, /"y".*five fields/],
      ['a duration without unit', { name: 'z', cron: '0 0 * * *', duration: '90', timeZone: 'UTC' }, /"z".*positive duration/],
      ['an end before the start', { name: 'w', start: '2026-02-02T00:00', end: '2026-02-01T00:00', timeZone: 'UTC' }, /"w".*not after start/],
      ['a date that does not exist', { name: 'v', start: '2026-02-30T00:00', end: '2026-03-01T00:00', timeZone: 'UTC' }, /"v".*not a real calendar/],
    ])('refuses %s, naming the window', (_what, window, message) => {
      expect.assertions(2);
      try {
        isFrozen([window], at('2026-01-01T00:00:00Z'));
      } catch (err) {
        expect(isSlipwayError(err)).toBe(true);
        expect((err as Error).message).toMatch(message);
      }
    });
  });
});

describe('the example production/freeze.yaml', () => {
  it('validates and freezes production on a Sunday morning and over the year end', () => {
    const text = readFileSync(new URL('../../../environments/production/freeze.yaml', import.meta.url), 'utf8');
    const result = validateFile('FreezeWindows', text, 'production/freeze.yaml');
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    const windows = result.value.spec.windows;
    expect(isFrozen(windows, at('2026-11-29T02:30:00Z'))).toMatchObject({ frozen: true, window: { name: 'sunday-maintenance' } });
    expect(isFrozen(windows, at('2026-11-30T12:00:00Z')).frozen).toBe(false);
    const yearEnd = isFrozen(windows, at('2026-12-27T12:00:00Z'));
    expect(yearEnd.frozen && formatInZone(yearEnd.until.getTime(), 'Europe/Berlin')).toBe('2027-01-04T09:00:00+01:00');
  });
});
