/** Freeze windows: which are in force at an instant, which comes next. Pure: the instant is passed in. */
export {
  activeWindows,
  frozenUntil,
  isFrozen,
  nextWindow,
  parseDuration,
  type FreezeVerdict,
  type WindowOccurrence,
} from './windows.js';
export { formatInZone, instantOf, parseLocalDateTime, wallTimeAt, type WallTime } from './zoned.js';
