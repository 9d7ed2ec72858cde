import type { Command } from 'commander';
import * as approve from './approve.js';
import * as freeze from './freeze.js';
import * as merge from './merge.js';
import * as promote from './promote.js';
import * as proposals from './proposals.js';

/**
 * Every command module exports `register(program)`. Add yours to this list (one line each, keep the
 * order of the README's command table).
 */
const modules: { register(program: Command): void }[] = [promote, proposals, approve, merge, freeze];

export function registerCommands(program: Command): void {
  for (const m of modules) m.register(program);
}
