/**
 * The Controller: the environments repo's main, gated and rolled out onto targets, with its state on disk.
 * It wires sync → gates → rollout core → Target port → state; everything outside comes in as a port.
 */
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { homePath } from '../lib/home.js';
import { FileAuditLog, StateStore } from './state/index.js';
import { Reconciler, ControllerMetrics, systemClock, type Clock, type EnvironmentSource, type FreezeCalendar, type ProvenanceVerifier, type ServiceRecord, type SyncReport } from './reconcile/index.js';
import { SyncLoop } from './sync/index.js';
import type { AnalysisProvider } from './analysis/types.js';
import type { DigestChange, GitProvider, Proposal, RollbackPort } from '../lib/gitprovider/types.js';
import { SlipwayError } from '../lib/errors.js';
import type { Target } from './targets/types.js';
import type { AuditEntry } from './reconcile/types.js';

export interface ControllerOptions {
  source: EnvironmentSource;
  targetFor(environment: string): Target;
  verifier: ProvenanceVerifier;
  freeze: FreezeCalendar;
  analysis: AnalysisProvider;
  rollback: RollbackPort;
  clock?: Clock;
  /** Where records and the audit log live (default $SLIPWAY_HOME/controller). */
  stateDir?: string;
  environments?: string[];
  /** node-cron expression for polling main (default every 30 s). */
  schedule?: string;
  log?: (line: string) => void;
  /** More Prometheus registries served at the controller's /metrics (the local proxy's per-track series). */
  extraMetrics?: Registry[];
  /** Where `POST /api/v1/deployments` proposes a digest (a git change; merged by policy or a person). */
  proposals?: GitProvider;
}

export interface ServiceStatus {
  environment: string;
  service: string;
  /** Where the image comes from (the spec being rolled out). */
  repository?: string;
  /** What main names now. */
  desiredDigest?: string;
  /** What serves stable traffic. */
  runningDigest?: string;
  /** The digest being rolled out, while a rollout runs. */
  rolloutDigest?: string;
  phase: string;
  strategy: string;
  step: { index: number; count: number };
  weights: { stable: number; canary: number };
  message?: string;
  gate?: ServiceRecord['gate'];
  commit?: string;
  updatedAt?: string;
  nextActionAt?: string;
}

export interface EnvironmentStatus {
  environment: string;
  lastAppliedCommit?: string;
  rejectedCommit?: string;
  problems?: unknown[];
  lastSyncAt?: string;
  services: ServiceStatus[];
}

export function serviceStatus(rec: ServiceRecord): ServiceStatus {
  const s = rec.state;
  const inFlight = !['Idle', 'Completed', 'Aborted', 'RolledBack'].includes(s.phase);
  return {
    environment: rec.environment,
    service: rec.service,
    ...(rec.spec ? { repository: rec.spec.track.repository } : {}),
    ...(rec.desiredDigest ? { desiredDigest: rec.desiredDigest } : {}),
    ...(s.stable ? { runningDigest: s.stable.digest } : {}),
    ...(inFlight && s.desired ? { rolloutDigest: s.desired.digest } : {}),
    phase: s.phase,
    strategy: s.strategy,
    step: { index: s.stepCount === 0 ? 0 : Math.min(s.stepIndex + 1, s.stepCount), count: s.stepCount },
    weights: { stable: 100 - s.canaryWeight, canary: s.canaryWeight },
    ...(s.message ? { message: s.message } : {}),
    ...(rec.gate ? { gate: rec.gate } : {}),
    ...(rec.commit ? { commit: rec.commit } : {}),
    ...(s.updatedAt ? { updatedAt: s.updatedAt } : {}),
    ...(rec.requeueAt ? { nextActionAt: rec.requeueAt } : {}),
  };
}

export class Controller {
  readonly reconciler: Reconciler;
  readonly loop: SyncLoop;
  readonly audit: FileAuditLog;
  readonly metrics: ControllerMetrics;
  readonly stateDir: string;
  readonly source: EnvironmentSource;
  private lastReport?: SyncReport;
  private readonly startedAt = new Date();

  constructor(private readonly options: ControllerOptions) {
    this.stateDir = options.stateDir ?? homePath('controller');
    this.audit = new FileAuditLog(join(this.stateDir, 'audit.jsonl'));
    this.metrics = new ControllerMetrics();
    this.source = options.source;
    const log = options.log ?? (() => undefined);
    this.reconciler = new Reconciler({
      store: new StateStore(this.stateDir),
      metrics: this.metrics,
      ...(options.environments ? { environments: options.environments } : {}),
      log,
      ports: {
        source: options.source,
        targetFor: options.targetFor,
        verifier: options.verifier,
        freeze: options.freeze,
        analysis: options.analysis,
        rollback: options.rollback,
        audit: this.audit,
        clock: options.clock ?? systemClock,
      },
    });
    this.loop = new SyncLoop({
      reconciler: this.reconciler,
      ...(options.schedule ? { schedule: options.schedule } : {}),
      onReport: (r) => {
        this.lastReport = r;
        if (!r.unchanged) log(`sync (${r.trigger}) ${r.head?.slice(0, 12) ?? '?'}: ${r.error ?? (r.problems ? `rejected, ${r.problems.length} problem(s)` : `${r.changed.length} service(s) looked at`)} in ${r.durationMs.toFixed(1)} ms`);
      },
      onError: (err) => log(`sync loop: ${(err as Error).message}`),
    });
  }

  /** Resume what a previous process left, sync, then follow the schedule and the webhook. */
  async start(): Promise<SyncReport> {
    return this.loop.start();
  }

  /** One pass and return: replay, sync, and whatever became due. */
  async once(): Promise<SyncReport> {
    await this.reconciler.open();
    await this.reconciler.runDue();
    const report = await this.reconciler.sync('startup', true);
    this.lastReport = report;
    await this.reconciler.runDue();
    return report;
  }

  trigger(trigger: 'webhook' | 'api' | 'interval'): Promise<SyncReport> {
    return this.loop.trigger(trigger);
  }

  promote(environment: string, service: string, actor: string): Promise<ServiceRecord> {
    return this.reconciler.promote(environment, service, actor);
  }

  /** A deployment is a git change: propose the digest to the environment through the git provider. */
  async propose(change: DigestChange): Promise<Proposal> {
    if (!this.options.proposals) {
      throw new SlipwayError('NO_GIT_PROVIDER', 'this controller has no git provider to propose through (a remote repository needs one)', 'stalling');
    }
    const proposal = await this.options.proposals.propose(change);
    void this.trigger('api').catch(() => undefined);
    return proposal;
  }

  /** A revert commit of the change that brought the digest main names now, then a sync to apply it. */
  async rollback(environment: string, service: string, actor: string, reason: string): Promise<{ commit: string; revertedCommit: string; restoredDigest: string }> {
    const result = await this.reconciler.rollback(environment, service, actor, reason);
    void this.trigger('api').catch(() => undefined);
    return result;
  }

  environments(): EnvironmentStatus[] {
    const envs = new Map<string, EnvironmentStatus>();
    for (const e of this.reconciler.environmentRecords()) {
      envs.set(e.environment, {
        environment: e.environment,
        ...(e.lastAppliedCommit ? { lastAppliedCommit: e.lastAppliedCommit } : {}),
        ...(e.rejectedCommit ? { rejectedCommit: e.rejectedCommit } : {}),
        ...(e.problems ? { problems: e.problems } : {}),
        ...(e.lastSyncAt ? { lastSyncAt: e.lastSyncAt } : {}),
        services: [],
      });
    }
    for (const rec of this.reconciler.serviceRecords()) {
      const env = envs.get(rec.environment) ?? { environment: rec.environment, services: [] };
      env.services.push(serviceStatus(rec));
      envs.set(rec.environment, env);
    }
    return [...envs.values()];
  }

  service(environment: string, service: string): ServiceStatus | undefined {
    const rec = this.reconciler.record(environment, service);
    return rec ? serviceStatus(rec) : undefined;
  }

  /** Everything /metrics serves: the controller's own series, then the extra registries'. */
  async metricsText(): Promise<string> {
    const parts = [await this.metrics.registry.metrics()];
    for (const r of this.options.extraMetrics ?? []) parts.push(await r.metrics());
    return parts.filter((p) => p.trim()).join('\n');
  }

  async history(environment: string, service: string, limit = 50): Promise<AuditEntry[]> {
    return (await this.audit.list({ environment, service })).slice(-limit);
  }

  health(): { ok: boolean; startedAt: string; lastSync?: { trigger: string; head?: string; error?: string; durationMs: number } } {
    const r = this.lastReport;
    return {
      ok: !r?.error,
      startedAt: this.startedAt.toISOString(),
      ...(r ? { lastSync: { trigger: r.trigger, ...(r.head ? { head: r.head } : {}), ...(r.error ? { error: r.error } : {}), durationMs: r.durationMs } } : {}),
    };
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }
}
