/** Every cache, key and state file of Slipway lives under $SLIPWAY_HOME (default ~/.slipway). */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function slipwayHome(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.SLIPWAY_HOME || join(homedir(), '.slipway'));
}

export function homePath(...parts: string[]): string {
  return join(slipwayHome(), ...parts);
}
