import type { Command } from 'commander';
import * as build from './build.js';
import * as signBuild from './sign-build.js';
import * as init from './init.js';
import * as validate from './validate.js';
import * as verify from './verify.js';
import * as rollback from './rollback.js';
import * as promote from './promote.js';
import * as proposals from './proposals.js';
import * as approve from './approve.js';
import * as merge from './merge.js';
import * as freeze from './freeze.js';
import * as log from './log.js';
import * as controller from './controller.js';
import * as status from './status.js';
import * as demo from './demo.js';
import * as pipelines from './pipelines.js';

/**
 * Every command module exports `register(program)`. Add yours with one import line and one list line
 * (this file merges with git's union driver, see .gitattributes, so parallel additions never conflict).
 */
const modules: { register(program: Command): void }[] = [
  init,
  validate,
  build,
  signBuild,
  verify,
  rollback,
  promote,
  proposals,
  approve,
  merge,
  freeze,
  log,
  controller,
  status,
  demo,
  pipelines,
];

export function registerCommands(program: Command): void {
  for (const m of modules) m.register(program);
}
