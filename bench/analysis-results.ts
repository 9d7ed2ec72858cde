/**
 * bench/results/analysis.md holds the results of two benches (bench/judge.ts, bench/rollback-e2e.ts); each
 * rewrites only its own section, and the sections keep their order whichever bench ran last.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const FILE = 'bench/results/analysis.md';
const TITLE = '# Analysis: the quality of the judge, and the time to roll back';
const SECTIONS = ['judge', 'rollback'] as const;
type Section = (typeof SECTIONS)[number];

function markers(name: Section): { begin: string; end: string } {
  return { begin: `<!-- ${name}:begin (written by the bench, do not edit) -->`, end: `<!-- ${name}:end -->` };
}

export function writeResultsSection(name: Section, text: string): void {
  const current = existsSync(FILE) ? readFileSync(FILE, 'utf8') : '';
  const blocks = SECTIONS.map((section) => {
    const { begin, end } = markers(section);
    if (section === name) return `${begin}\n${text.trim()}\n${end}`;
    const at = current.indexOf(begin);
    const until = current.indexOf(end);
    return at >= 0 && until > at ? current.slice(at, until + end.length) : undefined;
  }).filter((b): b is string => b !== undefined);
  // Hand-written reading of the numbers, between the title and the first section, is kept.
  const firstMarker = current.indexOf('<!-- ');
  const preamble = firstMarker > 0 ? current.slice(0, firstMarker).replace(TITLE, '').trim() : '';
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(FILE, `${TITLE}\n\n${preamble ? `${preamble}\n\n` : ''}${blocks.join('\n\n')}\n`);
}
