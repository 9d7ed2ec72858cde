import type { Command } from 'commander';
import * as build from './build.js';
import * as init from './init.js';
import * as validate from './validate.js';
import * as verify from './verify.js';
import * as rollback from './rollback.js';

/**
 * Every command module exports `register(program)`. Add yours with one import line and one list line
 * (this file merges with git's union driver, see .gitattributes, so parallel additions never conflict).
 */
const modules: { register(program: Command): void }[] = [
  init,
  validate,
  build,
  verify,
  rollback,
];

export function registerCommands(program: Command): void {
  for (const m of modules) m.register(program);
}
