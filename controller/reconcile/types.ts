/** The reconcile shell's ports (everything outside it) and the records it persists. */
import type { CommitDiff, LoadResult, Problem } from '../../lib/envrepo/types.js';
import type { VerificationResult, VerifyRequest } from '../../lib/provenance/types.js';
import type { RollbackPort } from '../../lib/gitprovider/types.js';
import type { FreezeConfig } from '../../schemas/index.js';
import type { AnalysisProvider } from '../analysis/types.js';
import type { Target } from '../targets/types.js';
import type { Intent, RolloutSpec, RolloutState } from '../rollout/index.js';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** The environments repository as the controller sees it. */
export interface EnvironmentSource {
  /** Where it lives (a path or an http(s) URL), for status and logs. */
  readonly location: string;
  /** The commit main points at: one ref lookup when nothing moved (a fetch first for a remote). */
  head(): Promise<string>;
  load(commit: string): Promise<LoadResult>;
  /** Changed services between two commits; `from` undefined = everything is new. */
  diff(from: string | undefined, to: string): Promise<CommitDiff>;
  /** Messages of the commits in (from, to] that touched `path`, newest first (at most `limit`). */
  commitsTouching(path: string, from: string | undefined, to: string, limit?: number): Promise<{ oid: string; message: string }[]>;
}

export interface ProvenanceVerifier {
  verify(request: VerifyRequest): Promise<VerificationResult>;
}

export interface ActiveFreeze {
  name: string;
  reason?: string;
  endsAt: Date;
}

/** Freeze windows: which one (if any) is open at `now`. */
export interface FreezeCalendar {
  activeWindow(freeze: FreezeConfig | undefined, now: Date): ActiveFreeze | undefined;
}

export interface AuditEntry {
  /** Unique; a replayed entry (same id) is recorded once. */
  id: string;
  at: string;
  environment: string;
  service?: string;
  action: string;
  actor: string;
  message: string;
  commit?: string;
  digest?: string;
  data?: Record<string, unknown>;
}

export interface AuditSink {
  record(entry: AuditEntry): Promise<void>;
  /** Several entries in one durable append (ids already recorded are skipped). */
  recordMany?(entries: AuditEntry[]): Promise<void>;
  list?(filter?: { environment?: string; service?: string }): Promise<AuditEntry[]>;
}

export interface ReconcilePorts {
  source: EnvironmentSource;
  /** One target per environment (local, kubernetes), made from the environment's config. */
  targetFor(environment: string): Target;
  verifier: ProvenanceVerifier;
  freeze: FreezeCalendar;
  analysis: AnalysisProvider;
  rollback: RollbackPort;
  audit: AuditSink;
  clock: Clock;
}

export type GateCode = 'NO_ATTESTATION' | 'BAD_SIGNATURE' | 'UNTRUSTED_KEY' | 'SUBJECT_MISMATCH' | 'UNTRUSTED_BUILDER'
  | 'SOURCE_NOT_ALLOWED' | 'KEY_EXPIRED' | 'MALFORMED' | 'QUARANTINED' | 'FROZEN' | 'VERIFY_FAILED';

/** Why a change has not reached the target (yet). */
export interface GateBlock {
  status: 'refused' | 'waiting';
  code: GateCode;
  message: string;
  commit: string;
  digest: string;
  /** waiting: when the gate opens by itself. */
  until?: string;
}

/** Intents persisted before they are applied: the write-ahead record that makes a crash replay safe. */
export interface PendingIntents {
  intents: Intent[];
  applied: string[];
  /** Non-idempotent intents (revert) that were started: on replay, check before doing them again. */
  started: string[];
  /** A verdict obtained while applying (runAnalysis), handed to the next decision. */
  verdict?: { id: string; outcome: 'pass' | 'fail' | 'inconclusive'; summary: string };
}

export interface ServiceRecord {
  environment: string;
  service: string;
  state: RolloutState;
  /** What the gates let through: the rollout works towards this. */
  spec?: RolloutSpec;
  /** Commit the spec came from. */
  commit?: string;
  /** Digest and commit main names now (may differ from spec while a gate holds it). */
  desiredDigest?: string;
  desiredCommit?: string;
  gate?: GateBlock;
  pending?: PendingIntents;
  requeueAt?: string;
  lastRevert?: { commit: string; revertedCommit: string; restoredDigest: string; at: string };
}

export interface EnvironmentRecord {
  environment: string;
  /** Last commit whose changes went through the gates. */
  lastAppliedCommit?: string;
  /** A commit refused as a whole (validation): skipped until main moves. */
  rejectedCommit?: string;
  problems?: Problem[];
  lastSyncAt?: string;
  lastError?: string;
}

export type SyncTrigger = 'interval' | 'webhook' | 'startup' | 'api' | 'timer';

export interface SyncReport {
  trigger: SyncTrigger;
  head?: string;
  /** Nothing moved: one ref lookup and nothing else. */
  unchanged: boolean;
  changed: { environment: string; service: string; outcome: string }[];
  problems?: Problem[];
  error?: string;
  durationMs: number;
}

export type { CommitDiff, LoadResult, Problem };
