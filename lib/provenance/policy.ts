/** The policy half of verification: pure checks of a statement against `slipway.yaml`'s trust section. */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { errorMessage } from '../errors.js';
import type { AllowedSource, TrustPolicy } from '../../schemas/index.js';
import { branchOf } from './statement.js';

export interface TrustedKeyEntry {
  name: string;
  /** Undefined when the PEM is missing or unusable; `problem` says why. */
  key?: KeyObject;
  problem?: string;
  validFrom?: Date;
  validUntil?: Date;
}

export interface PreparedPolicy {
  policy: TrustPolicy;
  keys: Map<string, TrustedKeyEntry>;
  /** The same entries by sha256 of the DER public key (hex): the key id other signers put in a bundle's hint. */
  byFingerprint: Map<string, TrustedKeyEntry>;
  /** sha256 of the policy and of the key set: together they identify what a cached result was decided under. */
  policyHash: string;
  keySetHash: string;
}

const preparedByHash = new Map<string, PreparedPolicy>();
const MAX_PREPARED = 64;

/** The same policy and key objects (the controller passes one DesiredState around) skip even the hashing. */
const preparedByIdentity = new WeakMap<TrustPolicy, WeakMap<Record<string, string>, PreparedPolicy>>();

/**
 * Parses the trusted keys once per (policy, keys) content; later calls with equal content reuse the result.
 * Callers must not mutate a policy or key map after passing it in (the result is remembered by identity).
 */
export function preparePolicy(policy: TrustPolicy, publicKeys: Record<string, string>): PreparedPolicy {
  const byKeys = preparedByIdentity.get(policy);
  const same = byKeys?.get(publicKeys);
  if (same) return same;
  const prepared = prepareByContent(policy, publicKeys);
  if (byKeys) byKeys.set(publicKeys, prepared);
  else preparedByIdentity.set(policy, new WeakMap([[publicKeys, prepared]]));
  return prepared;
}

function prepareByContent(policy: TrustPolicy, publicKeys: Record<string, string>): PreparedPolicy {
  const policyHash = policyHashOf(policy);
  const keySetHash = keySetHashOf(publicKeys);
  const id = `${policyHash}:${keySetHash}`;
  const known = preparedByHash.get(id);
  if (known) return known;

  const keys = new Map<string, TrustedKeyEntry>();
  const byFingerprint = new Map<string, TrustedKeyEntry>();
  for (const trusted of policy.keys) {
    const entry: TrustedKeyEntry = { name: trusted.name };
    if (trusted.validFrom) entry.validFrom = new Date(trusted.validFrom);
    if (trusted.validUntil) entry.validUntil = new Date(trusted.validUntil);
    const pem = publicKeys[trusted.name];
    if (pem === undefined) {
      entry.problem = `no public key was supplied for trusted key '${trusted.name}' (${trusted.publicKey})`;
    } else {
      try {
        const key = createPublicKey(pem);
        const curve = key.asymmetricKeyDetails?.namedCurve;
        if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
          entry.problem = `trusted key '${trusted.name}' is not an ECDSA P-256 key`;
        } else {
          entry.key = key;
          byFingerprint.set(createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex'), entry);
        }
      } catch (err) {
        entry.problem = `trusted key '${trusted.name}' is not a PEM public key (${errorMessage(err)})`;
      }
    }
    keys.set(trusted.name, entry);
  }
  const prepared: PreparedPolicy = { policy, keys, byFingerprint, policyHash, keySetHash };
  if (preparedByHash.size >= MAX_PREPARED) preparedByHash.delete(preparedByHash.keys().next().value as string);
  preparedByHash.set(id, prepared);
  return prepared;
}

export function policyHashOf(policy: TrustPolicy): string {
  return sha256(stableJson(policy));
}

export function keySetHashOf(publicKeys: Record<string, string>): string {
  return sha256(stableJson(publicKeys));
}

/** Undefined when the key may be used at `now`, else why not. */
export function keyWindowProblem(entry: TrustedKeyEntry, now: Date): string | undefined {
  if (entry.validFrom && now < entry.validFrom) {
    return `key '${entry.name}' is not valid before ${entry.validFrom.toISOString()} (now ${now.toISOString()})`;
  }
  if (entry.validUntil && now > entry.validUntil) {
    return `key '${entry.name}' expired at ${entry.validUntil.toISOString()} (now ${now.toISOString()})`;
  }
  return undefined;
}

/** `*` matches any run of characters (including `/`); everything else is literal. */
export function globMatch(pattern: string, value: string): boolean {
  return globRegExp(pattern).test(value);
}

const globCache = new Map<string, RegExp>();
function globRegExp(pattern: string): RegExp {
  let re = globCache.get(pattern);
  if (!re) {
    const body = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
    re = new RegExp(`^${body}$`);
    if (globCache.size > 1024) globCache.clear();
    globCache.set(pattern, re);
  }
  return re;
}

export function builderTrusted(policy: TrustPolicy, builderId: string): boolean {
  return policy.builders.some((pattern) => globMatch(pattern, builderId));
}

/** Sources that apply to a service (by the `services` globs, default every service). */
export function sourcesFor(policy: TrustPolicy, service: string): AllowedSource[] {
  return policy.sources.filter((s) => (s.services ?? ['*']).some((p) => globMatch(p, service)));
}

/** A ref is allowed when its branch name (`refs/heads/` stripped) or the full ref matches a branch glob. */
export function sourceAllowed(policy: TrustPolicy, service: string, repo: string, ref: string): boolean {
  const branch = branchOf(ref);
  return sourcesFor(policy, service).some(
    (s) => globMatch(s.repo, repo) && (s.branches ?? ['main']).some((b) => globMatch(b, branch) || globMatch(b, ref)),
  );
}

export function describeSources(sources: AllowedSource[]): string {
  if (sources.length === 0) return 'none';
  return sources.map((s) => `${s.repo} [${(s.branches ?? ['main']).join(', ')}]`).join('; ');
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** JSON with object keys sorted, so equal content hashes equal however it was written. */
export function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
}
