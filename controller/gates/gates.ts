/**
 * Gates between a commit of main and a target. Every new digest must be signed and built as the trust
 * policy says, must not be quarantined, and (unless the change is a rollback) must not land inside a
 * freeze window. A refused change never reaches the target; a waiting one applies by itself when its
 * window ends.
 */
import { isRollbackCommit } from '../../lib/rollback/index.js';
import type { QuarantineEntry, ServiceConfig, TrustPolicy } from '../../schemas/index.js';
import type { FreezeConfig } from '../../schemas/index.js';
import type { FreezeCalendar, GateBlock, GateCode, ProvenanceVerifier } from '../reconcile/types.js';

export interface GateInput {
  environment: string;
  service: string;
  commit: string;
  /** The service file at `commit`; undefined when the service was removed. */
  config?: ServiceConfig;
  /** The digest the environment runs towards now (the last change that went through). */
  currentDigest?: string;
  /** The commits that brought this change are rollbacks (revert commits): freeze windows let them through. */
  rollback: boolean;
  /**
   * The reason recorded in the `Slipway-Freeze-Override` trailer of the commit that brought this change
   * (`slipway merge --override`): an explicit, recorded decision to land it inside a freeze window.
   */
  freezeOverride?: string;
  quarantine: QuarantineEntry[];
  policy: TrustPolicy;
  publicKeys: Record<string, string>;
  freeze?: FreezeConfig;
  now: Date;
}

export interface GatePorts {
  verifier: ProvenanceVerifier;
  freeze: FreezeCalendar;
}

export interface FreezeOverridden {
  window: string;
  until: string;
  reason: string;
}

export type GateOutcome =
  | { status: 'pass'; verified?: { builderId: string; sourceRepo: string; sourceCommit: string }; freezeOverridden?: FreezeOverridden }
  | GateBlock;

export function quarantineEntryFor(entries: QuarantineEntry[], digest: string, environment: string, service: string): QuarantineEntry | undefined {
  return entries.find(
    (q) => q.digest === digest && (!q.environment || q.environment === environment) && (!q.service || q.service === service),
  );
}

/** A revert commit (ours, with the Slipway-Rollback trailer, or a person's own `git revert`). */
export function isRollbackMessage(message: string): boolean {
  return isRollbackCommit({ message });
}

/**
 * The gates, in order: quarantine, provenance (only for a digest not already running), freeze.
 * The first one that blocks decides.
 */
export async function runGates(input: GateInput, ports: GatePorts): Promise<GateOutcome> {
  const block = (status: GateBlock['status'], code: GateCode, message: string, digest: string, until?: Date): GateBlock => ({
    status,
    code,
    message,
    commit: input.commit,
    digest,
    ...(until ? { until: until.toISOString() } : {}),
  });
  const digest = input.config?.spec.image.digest ?? input.currentDigest ?? '';
  let verified: { builderId: string; sourceRepo: string; sourceCommit: string } | undefined;

  if (input.config) {
    const q = quarantineEntryFor(input.quarantine, digest, input.environment, input.service);
    if (q) {
      return block('refused', 'QUARANTINED', `${digest} is quarantined (${q.reason}); remove it from quarantine.yaml to allow it again`, digest);
    }
    if (digest !== input.currentDigest) {
      let result;
      try {
        result = await ports.verifier.verify({
          repository: input.config.spec.image.repository,
          digest,
          service: input.service,
          policy: input.policy,
          publicKeys: input.publicKeys,
          now: input.now,
        });
      } catch (err) {
        return block('waiting', 'VERIFY_FAILED', `could not verify the provenance of ${digest}: ${(err as Error).message}; will retry`, digest);
      }
      if (!result.ok) return block('refused', result.code, result.message, digest);
      verified = { builderId: result.provenance.builderId, sourceRepo: result.provenance.sourceRepo, sourceCommit: result.provenance.sourceCommit };
    }
  }

  let freezeOverridden: FreezeOverridden | undefined;
  if (!input.rollback) {
    const window = ports.freeze.activeWindow(input.freeze, input.now);
    if (window && input.freezeOverride) {
      freezeOverridden = { window: window.name, until: window.endsAt.toISOString(), reason: input.freezeOverride };
    } else if (window) {
      return block(
        'waiting',
        'FROZEN',
        `freeze window "${window.name}"${window.reason ? ` (${window.reason})` : ''} is in force until ${window.endsAt.toISOString()}; the change applies by itself then`,
        digest,
        window.endsAt,
      );
    }
  }
  return { status: 'pass', ...(verified ? { verified } : {}), ...(freezeOverridden ? { freezeOverridden } : {}) };
}
