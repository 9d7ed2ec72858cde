/** bench/results/analysis.md holds the results of two benches (bench/judge.ts, bench/rollback-e2e.ts); each rewrites only its own section. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const FILE = 'bench/results/analysis.md';
const TITLE = '# Analysis: the quality of the judge, and the time to roll back';

export function writeResultsSection(name: 'judge' | 'rollback', text: string): void {
  const begin = `<!-- ${name}:begin (written by the bench, do not edit) -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${begin}\n${text.trim()}\n${end}`;
  mkdirSync('bench/results', { recursive: true });
  const current = existsSync(FILE) ? readFileSync(FILE, 'utf8') : '';
  const at = current.indexOf(begin);
  const until = current.indexOf(end);
  let next: string;
  if (at >= 0 && until > at) next = current.slice(0, at) + block + current.slice(until + end.length);
  else if (current.includes('<!-- ')) next = `${current.trimEnd()}\n\n${block}\n`;
  else next = `${TITLE}\n\n${block}\n`;
  writeFileSync(FILE, next);
}
