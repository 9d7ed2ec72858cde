/** The git side of promotion: proposals that bump a digest, approvals, and merges gated by policy. */
export type * from './types.js';
export { LocalGitProvider, parseIdentity, proposalId, type LocalProviderOptions, type Verifier } from './local.js';
export { mergeGate, requiredApprovals, type GateDecision, type GateInput, type RefusalReason } from './checks.js';
export { readPromotionState, readSlipwayConfig, servicePath, quarantined, type PromotionState, type FileReader } from './state.js';
export { fileAuditLog, noAudit, type AuditAction, type AuditEvent, type AuditSink } from './audit.js';
export { formatMessage, parseTrailers, TRAILER, trailer, trailerAll, type Trailers } from './trailers.js';
export { Repo, locateRepo, type Identity, type RepoLocation } from './repo.js';
export { GitHubProvider, type GitHubProviderOptions } from './github.js';
export { RemoteRepo, authHeaders, isRemoteUrl, openRepository, redactUrl, remoteMirrorDir, type RemoteRepoOptions } from './remote.js';
