/**
 * Whether a build signs, as `slipway build` decides it (and the controller's pipeline jobs with it): off when
 * asked (`--no-sign`); otherwise with the key or keyless choice `resolveSigning` makes; a missing key leaves
 * the image unsigned with a reason, unless signing was asked for explicitly (then it is an error).
 */
import { isSlipwayError } from '../../lib/errors.js';
import { resolveSigning } from './resolve.js';
import type { SigningOptions } from './sign.js';

export interface SigningFlags {
  /** undefined by default, true when signing is required, false when turned off. */
  sign?: boolean;
  key?: string;
  keyless?: boolean;
  env?: NodeJS.ProcessEnv;
}

export type SigningDecision = { sign: true; signing: SigningOptions } | { sign: false; because: 'turned-off' | 'no-key'; reason: string };

export function decideSigning(flags: SigningFlags): SigningDecision {
  const env = flags.env ?? process.env;
  if (flags.sign === false) return { sign: false, because: 'turned-off', reason: 'signing was turned off' };
  const explicit = flags.sign === true || !!flags.key || !!flags.keyless || !!env.SLIPWAY_SIGNING_KEY || !!env.SLIPWAY_SIGNING;
  try {
    return { sign: true, signing: resolveSigning({ keyPath: flags.key, keyless: flags.keyless || undefined, env }) };
  } catch (err) {
    if (!explicit && isSlipwayError(err) && err.code === 'SIGNING_KEY_NOT_FOUND') return { sign: false, because: 'no-key', reason: err.message };
    throw err;
  }
}
