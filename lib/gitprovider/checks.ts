/**
 * The merge gate, pure: given a proposal, the state of main and the verification outcome, may it merge?
 * Checks run in a fixed order and the first refusal wins, so the same inputs always give the same reason:
 * state → quarantine → approvals → freeze (a rollback is never frozen; an override is allowed through and
 * recorded) → verification, last because it is the only check that reads the registry.
 */
import { isFrozen, formatInZone, type WindowOccurrence } from '../freeze/index.js';
import type { VerificationResult } from '../provenance/types.js';
import type { Proposal } from './types.js';
import { quarantined, type PromotionState } from './state.js';

export type RefusalReason =
  | 'NOT_OPEN'
  | 'NOT_VERIFIED'
  | 'QUARANTINED'
  | 'APPROVALS_MISSING'
  | 'FROZEN';

export type GateDecision =
  | { allowed: true; override?: { reason: string; window: WindowOccurrence } }
  | { allowed: false; reason: RefusalReason; message: string; data: Record<string, unknown> };

export interface GateInput {
  proposal: Proposal;
  rollback: boolean;
  state: PromotionState;
  /** Undefined: not checked yet (the cheap checks run first, so a refusal never waits on the registry). */
  verification?: VerificationResult;
  now: Date;
  override?: string;
}

export function requiredApprovals(state: PromotionState): number {
  return state.environment.spec.approvals?.required ?? 0;
}

export function mergeGate(input: GateInput): GateDecision {
  const { proposal, state } = input;
  let overrideOf: { reason: string; window: WindowOccurrence } | undefined;
  if (proposal.state !== 'open') {
    return { allowed: false, reason: 'NOT_OPEN', message: `proposal ${proposal.id} is ${proposal.state}, not open`, data: { state: proposal.state } };
  }
  const q = quarantined(state.quarantine, proposal.digest, proposal.environment, proposal.service);
  if (q) {
    return {
      allowed: false,
      reason: 'QUARANTINED',
      message: `${proposal.digest} is quarantined (quarantine.yaml: ${q.reason}); build a new image instead`,
      data: { entry: q },
    };
  }
  const needed = requiredApprovals(state);
  if (proposal.approvals.length < needed) {
    return {
      allowed: false,
      reason: 'APPROVALS_MISSING',
      message: `${proposal.environment} needs ${needed} approval(s) from people other than the author (${proposal.author}); it has ${proposal.approvals.length}${proposal.approvals.length ? ` (${proposal.approvals.join(', ')})` : ''}`,
      data: { required: needed, approvals: proposal.approvals },
    };
  }
  const verdict = input.rollback ? undefined : isFrozen(state.freeze, input.now);
  if (verdict?.frozen) {
    if (input.override && input.override.trim()) {
      overrideOf = { reason: input.override.trim(), window: verdict.window };
    } else {
      const until = formatInZone(verdict.until.getTime(), verdict.window.timeZone);
      return {
        allowed: false,
        reason: 'FROZEN',
        message: `${proposal.environment} is frozen by "${verdict.window.name}"${verdict.window.reason ? ` (${verdict.window.reason})` : ''} until ${until}; merge after that, or pass --override "<reason>"`,
        data: { window: verdict.window.name, until: verdict.until.toISOString() },
      };
    }
  }
  if (input.verification && !input.verification.ok) {
    return {
      allowed: false,
      reason: 'NOT_VERIFIED',
      message: `${proposal.digest} does not verify (${input.verification.code}): ${input.verification.message}`,
      data: { code: input.verification.code },
    };
  }
  return { allowed: true, ...(overrideOf ? { override: overrideOf } : {}) };
}
