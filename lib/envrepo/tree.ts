/**
 * Git tree objects as bytes: `<octal mode> <name>\0<20-byte id>` repeated, sorted by git (a
 * directory sorts as if its name ended in `/`). Parsing them here instead of through
 * isomorphic-git's readTree avoids its re-sort and per-entry objects, and lets a diff skip equal
 * entries by comparing bytes: for a `services/` tree of 10,000 entries that is the difference
 * between milliseconds and tens of milliseconds.
 */

export interface TreeEntry {
  mode: string;
  path: string;
  oid: string;
  type: 'blob' | 'tree' | 'commit';
}

const SPACE = 0x20;
const NUL = 0;
const SLASH = 0x2f;

function typeOfMode(mode: string): TreeEntry['type'] {
  if (mode === '40000' || mode === '040000') return 'tree';
  if (mode === '160000') return 'commit';
  return 'blob';
}

/** Normalised like git prints it (`040000` for trees). */
function normaliseMode(mode: string): string {
  return mode.length === 5 ? `0${mode}` : mode;
}

/** Byte range of the entry starting at `start`: name from `nameStart` to `nul`, id after `nul`, next entry at `end`. */
interface Span {
  start: number;
  modeEnd: number;
  nul: number;
  end: number;
}

function span(raw: Uint8Array, start: number): Span {
  const modeEnd = raw.indexOf(SPACE, start);
  const nul = raw.indexOf(NUL, modeEnd + 1);
  if (modeEnd < 0 || nul < 0 || nul + 21 > raw.length) throw new Error(`malformed git tree object at byte ${start}`);
  return { start, modeEnd, nul, end: nul + 21 };
}

function decode(raw: Buffer, s: Span): TreeEntry {
  const mode = normaliseMode(raw.toString('latin1', s.start, s.modeEnd));
  return { mode, path: raw.toString('utf8', s.modeEnd + 1, s.nul), oid: raw.toString('hex', s.nul + 1, s.end), type: typeOfMode(mode) };
}

export function parseTree(raw: Buffer): TreeEntry[] {
  const out: TreeEntry[] = [];
  for (let pos = 0; pos < raw.length; ) {
    const s = span(raw, pos);
    out.push(decode(raw, s));
    pos = s.end;
  }
  return out;
}

function isTreeMode(raw: Buffer, s: Span): boolean {
  // "40000" (git writes trees without the leading zero)
  return s.modeEnd - s.start === 5 && raw[s.start] === 0x34 && raw[s.start + 1] === 0x30;
}

/** Git's tree order: names compared as bytes, a directory as if followed by `/`. */
function compareNames(a: Buffer, sa: Span, b: Buffer, sb: Span): number {
  const aLen = sa.nul - sa.modeEnd - 1;
  const bLen = sb.nul - sb.modeEnd - 1;
  const n = Math.min(aLen, bLen);
  const c = a.compare(b, sb.modeEnd + 1, sb.modeEnd + 1 + n, sa.modeEnd + 1, sa.modeEnd + 1 + n);
  if (c !== 0) return c;
  const aNext = aLen > n ? a[sa.modeEnd + 1 + n]! : isTreeMode(a, sa) ? SLASH : NUL;
  const bNext = bLen > n ? b[sb.modeEnd + 1 + n]! : isTreeMode(b, sb) ? SLASH : NUL;
  return aNext - bNext;
}

export interface EntryChange {
  /** Entry in the old tree (absent: added). */
  a?: TreeEntry;
  /** Entry in the new tree (absent: removed). */
  b?: TreeEntry;
}

/**
 * Entries that differ between two trees, in tree order. Entries whose bytes are equal (same mode,
 * name and id) are skipped without being decoded. An entry whose name is on both sides with
 * different type shows up as one change with both sides set.
 */
export function diffRawTrees(a: Buffer, b: Buffer): EntryChange[] {
  const out: EntryChange[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const sa = span(a, i);
    const sb = span(b, j);
    const lenA = sa.end - sa.start;
    const lenB = sb.end - sb.start;
    if (lenA === lenB && a.compare(b, sb.start, sb.end, sa.start, sa.end) === 0) {
      i = sa.end;
      j = sb.end;
      continue;
    }
    const order = compareNames(a, sa, b, sb);
    if (order === 0 || sameName(a, sa, b, sb)) {
      out.push({ a: decode(a, sa), b: decode(b, sb) });
      i = sa.end;
      j = sb.end;
    } else if (order < 0) {
      out.push({ a: decode(a, sa) });
      i = sa.end;
    } else {
      out.push({ b: decode(b, sb) });
      j = sb.end;
    }
  }
  for (; i < a.length; ) {
    const sa = span(a, i);
    out.push({ a: decode(a, sa) });
    i = sa.end;
  }
  for (; j < b.length; ) {
    const sb = span(b, j);
    out.push({ b: decode(b, sb) });
    j = sb.end;
  }
  return out;
}

/** Same name, whatever the type (a file replaced by a directory of the same name sorts differently). */
function sameName(a: Buffer, sa: Span, b: Buffer, sb: Span): boolean {
  const aLen = sa.nul - sa.modeEnd - 1;
  const bLen = sb.nul - sb.modeEnd - 1;
  return aLen === bLen && a.compare(b, sb.modeEnd + 1, sb.nul, sa.modeEnd + 1, sa.nul) === 0;
}
