import type { Command } from 'commander';
import * as rollback from './rollback.js';

/**
 * Every command module exports `register(program)`. Add yours to this list (one line each, keep the
 * order of the README's command table).
 */
const modules: { register(program: Command): void }[] = [rollback];

export function registerCommands(program: Command): void {
  for (const m of modules) m.register(program);
}
