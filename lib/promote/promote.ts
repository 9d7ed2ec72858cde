/**
 * Promotion, as orchestration over the ports: a fresh build lands in the first environment (merged at
 * once when the environment allows auto-merge and the provenance verifies), and `promote` carries the
 * digest main runs in one environment to the next as a proposal. Verification is injected, so the
 * same code runs with the real sigstore verifier and in tests.
 */
import { SlipwayError } from '../errors.js';
import { parseIdentity, quarantined, type AuditSink, type DigestChange, type GitProvider, type MergeResult, type Proposal, type Verifier } from '../gitprovider/index.js';
import type { VerificationResult } from '../provenance/types.js';
import type { DesiredStateReader } from './reader.js';

export interface PromotionDeps {
  provider: GitProvider;
  reader: DesiredStateReader;
  verify: Verifier;
  clock?: () => Date;
  /** Where refusals of `promote` are recorded (the provider records its own events). */
  audit?: AuditSink;
}

export interface BuildOutput {
  service: string;
  repository: string;
  digest: string;
  source: { repo: string; ref: string; commit: string };
  /** Where the signed provenance is, e.g. `host/hello:sha256-<hex>.att`. */
  provenance?: string;
}

export type Landing =
  | { outcome: 'skipped'; reason: string }
  | {
      outcome: 'proposed' | 'merged' | 'already-updated';
      environment: string;
      proposal: Proposal;
      verification: VerificationResult;
      merge?: MergeResult;
      /** Why an auto-merge did not happen (not verified, frozen, approvals missing, ...). */
      held?: { code: string; message: string };
    };

function branchName(ref: string): string {
  return ref.replace(/^refs\/heads\//, '');
}

export function attestationLocation(repository: string, digest: string): string {
  return `${repository}:${digest.replace(':', '-')}.att`;
}

/** A build from a deployable branch is proposed to the first environment, and merged when it may be. */
export async function landBuild(deps: PromotionDeps, build: BuildOutput, actor: string): Promise<Landing> {
  const first = await firstEnvironment(deps.reader);
  const state = await deps.reader.state(first);
  const deployable = state.config.spec.deployableBranches ?? ['main'];
  const branch = branchName(build.source.ref);
  if (!deployable.includes(branch)) {
    return { outcome: 'skipped', reason: `branch ${branch} is not deployable (slipway.yaml deployableBranches: ${deployable.join(', ')})` };
  }
  const now = deps.clock?.() ?? new Date();
  const verification = await deps.verify({
    repository: build.repository,
    digest: build.digest,
    service: build.service,
    policy: state.config.spec.trust,
    publicKeys: state.publicKeys,
    now,
  });
  const change: DigestChange = {
    environment: first,
    service: build.service,
    digest: build.digest,
    repository: build.repository,
    source: build.source,
    provenance: build.provenance ?? attestationLocation(build.repository, build.digest),
    author: parseIdentity(actor),
  };
  const proposal = await deps.provider.propose(change);
  if (proposal.alreadyUpdated) return { outcome: 'already-updated', environment: first, proposal, verification };
  if (!state.environment.spec.autoMerge) return { outcome: 'proposed', environment: first, proposal, verification };
  if (!verification.ok) {
    return { outcome: 'proposed', environment: first, proposal, verification, held: { code: 'NOT_VERIFIED', message: `${verification.code}: ${verification.message}` } };
  }
  return mergeOrHold(deps, first, proposal, verification, actor);
}

export interface PromoteRequest {
  service: string;
  from: string;
  to: string;
  actor: string;
}

/** Propose the digest main runs in `from` to `to`; refuse a digest that does not verify or is quarantined. */
export async function promote(deps: PromotionDeps, request: PromoteRequest): Promise<Landing & { outcome: 'proposed' | 'merged' | 'already-updated' }> {
  const { service, from, to } = request;
  const fromState = await deps.reader.state(from);
  const order = fromState.config.spec.environments;
  if (!order.includes(to)) {
    throw new SlipwayError('UNKNOWN_ENVIRONMENT', `environment "${to}" is not listed in slipway.yaml (environments: ${order.join(', ')})`, 'stalling', { environment: to });
  }
  if (order.indexOf(to) <= order.indexOf(from)) {
    throw new SlipwayError('WRONG_DIRECTION', `${to} does not come after ${from} in slipway.yaml (${order.join(' → ')}); to go back, revert the commit in ${to}`, 'stalling', { from, to });
  }
  const image = await deps.reader.image(from, service);
  if (!image) {
    throw new SlipwayError('SERVICE_NOT_FOUND', `${from}/services/${service}.yaml does not exist on main (or has no spec.image); nothing to promote`, 'stalling', { service, environment: from });
  }
  const toState = await deps.reader.state(to);
  const q = quarantined(toState.quarantine, image.digest, to, service);
  const refuse = (code: string, message: string, data: Record<string, unknown>) => {
    deps.audit?.append({
      at: (deps.clock?.() ?? new Date()).toISOString(),
      action: 'refused',
      provider: deps.provider.kind,
      proposal: `${to}/${service}`,
      environment: to,
      service,
      digest: image.digest,
      actor: parseIdentity(request.actor).name,
      code,
      reason: message,
    });
    return new SlipwayError(code, message, 'stalling', data);
  };
  if (q) {
    throw refuse('QUARANTINED', `${service}@${image.digest} (running in ${from}) is quarantined: ${q.reason}; it is not promoted`, { entry: q });
  }
  const verification = await deps.verify({
    repository: image.repository,
    digest: image.digest,
    service,
    policy: toState.config.spec.trust,
    publicKeys: toState.publicKeys,
    now: deps.clock?.() ?? new Date(),
  });
  if (!verification.ok) {
    throw refuse('NOT_VERIFIED', `${service}@${image.digest} (running in ${from}) does not verify (${verification.code}): ${verification.message}`, { code: verification.code });
  }
  const { provenance } = verification;
  const proposal = await deps.provider.propose({
    environment: to,
    service,
    digest: image.digest,
    repository: image.repository,
    source: { repo: provenance.sourceRepo, ref: provenance.sourceRef, commit: provenance.sourceCommit },
    provenance: attestationLocation(image.repository, image.digest),
    author: parseIdentity(request.actor),
    message: `Promoted from ${from} (main at ${image.commit.slice(0, 12)}).`,
  });
  if (proposal.alreadyUpdated) return { outcome: 'already-updated', environment: to, proposal, verification };
  if (!toState.environment.spec.autoMerge) return { outcome: 'proposed', environment: to, proposal, verification };
  return mergeOrHold(deps, to, proposal, verification, request.actor);
}

async function mergeOrHold(deps: PromotionDeps, environment: string, proposal: Proposal, verification: VerificationResult, actor: string) {
  try {
    const merge = await deps.provider.merge(proposal.id, { actor, now: deps.clock?.() });
    return { outcome: 'merged' as const, environment, proposal: merge.proposal, verification, merge };
  } catch (err) {
    // A gate that says "not now" (frozen, approvals missing) leaves the proposal open for a person; anything else is an error.
    if (err instanceof SlipwayError && err.kind === 'waiting') {
      return { outcome: 'proposed' as const, environment, proposal, verification, held: { code: err.code, message: err.message } };
    }
    throw err;
  }
}

async function firstEnvironment(reader: DesiredStateReader): Promise<string> {
  const names = await reader.environments();
  if (names.length === 0) throw new SlipwayError('NO_ENVIRONMENTS', 'slipway.yaml lists no environments', 'stalling', {});
  return names[0]!;
}
