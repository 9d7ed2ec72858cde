/** The git side of promotion: proposals (branch or PR) that bump a digest, merged by a person or by policy. */

export interface SourceInfo {
  repo: string;
  commit: string;
  ref: string;
}

export interface DigestChange {
  environment: string;
  service: string;
  digest: string;
  repository: string;
  source?: SourceInfo;
  /** Where the signed provenance lives, e.g. `host:5000/hello:sha256-<hex>.att`. */
  provenance?: string;
  /** A rollback (revert) is allowed during freeze windows. */
  rollback?: boolean;
  author?: { name: string; email: string };
  message?: string;
}

export type ProposalState = 'open' | 'merged' | 'closed' | 'superseded';

export interface Proposal {
  id: string;
  environment: string;
  service: string;
  digest: string;
  state: ProposalState;
  branch: string;
  headCommit: string;
  author: string;
  approvals: string[];
  url?: string;
  number?: number;
  alreadyUpdated?: boolean;
}

export interface MergeOptions {
  actor: string;
  override?: string;
  now?: Date;
}

export interface MergeResult {
  proposal: Proposal;
  mergeCommit: string;
}

export interface GitProvider {
  readonly kind: 'local' | 'github';
  propose(change: DigestChange): Promise<Proposal>;
  merge(id: string, options: MergeOptions): Promise<MergeResult>;
  approve(id: string, approver: string): Promise<Proposal>;
  status(id: string): Promise<Proposal>;
  list(filter?: { environment?: string; service?: string; state?: ProposalState }): Promise<Proposal[]>;
}

/** A rollback: a revert commit of the change that introduced a bad digest, pushed to main. */
export interface RevertRequest {
  environment: string;
  service: string;
  badDigest: string;
  reason: string;
  /** Analysis summary (failed SLO, numbers) for the commit message. */
  summary?: string;
  actor: string;
  /** Add the digest to quarantine.yaml in the same commit. */
  quarantine: boolean;
}

export interface RevertResult {
  commit: string;
  revertedCommit: string;
  restoredDigest: string;
  /** True when git-revert semantics did not apply cleanly and the previous digest was written back explicitly. */
  explicit: boolean;
}

export interface RollbackPort {
  revert(request: RevertRequest): Promise<RevertResult>;
}
