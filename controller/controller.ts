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
import type { AuditEntry, AuditSink } from './reconcile/types.js';
import { ShardedEngine, type ShardingOptions } from './sharded.js';

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
  /**
   * Run environment/cluster pairs on shard Leases with their records and audit trail in ConfigMaps (see
   * controller/sharded.ts) instead of one reconciler over `stateDir`. `targetFor` is then unused.
   */
  sharding?: ShardingOptions;
}

/** The audit trail as the controller reads and writes it: a file, or the pairs' ConfigMaps. */
export interface ControllerAudit extends AuditSink {
  list(filter?: { environment?: string; service?: string }): Promise<AuditEntry[]>;
}

export interface ServiceStatus {
  environment: string;
  service: string;
  /** On shards: the cluster of the environment these records are of. */
  cluster?: string;
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
  private readonly single?: { reconciler: Reconciler; loop: SyncLoop };
  /** On shards (options.sharding): the pair workers this replica runs, and what it knows of the others. */
  readonly sharded?: ShardedEngine;
  readonly audit: ControllerAudit;
  readonly metrics: ControllerMetrics;
  readonly stateDir: string;
  readonly source: EnvironmentSource;
  private lastReport?: SyncReport;
  private readonly startedAt = new Date();

  constructor(private readonly options: ControllerOptions) {
    this.stateDir = options.stateDir ?? homePath('controller');
    this.metrics = new ControllerMetrics();
    this.source = options.source;
    const log = options.log ?? (() => undefined);
    if (options.sharding) {
      const sharded = new ShardedEngine(
        options.sharding,
        {
          source: options.source,
          verifier: options.verifier,
          freeze: options.freeze,
          analysis: options.analysis,
          rollback: options.rollback,
          clock: options.clock ?? systemClock,
        },
        this.metrics,
        options.schedule,
        log,
      );
      this.sharded = sharded;
      this.audit = {
        record: (entry) => sharded.recordFor(entry, typeof entry.data?.cluster === 'string' ? entry.data.cluster : undefined),
        list: (filter = {}) => sharded.history(filter),
      };
      return;
    }
    const audit = new FileAuditLog(join(this.stateDir, 'audit.jsonl'));
    this.audit = audit;
    const reconciler = new Reconciler({
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
        audit,
        clock: options.clock ?? systemClock,
      },
    });
    const loop = new SyncLoop({
      reconciler,
      ...(options.schedule ? { schedule: options.schedule } : {}),
      onReport: (r) => {
        this.lastReport = r;
        if (!r.unchanged) log(`sync (${r.trigger}) ${r.head?.slice(0, 12) ?? '?'}: ${r.error ?? (r.problems ? `rejected, ${r.problems.length} problem(s)` : `${r.changed.length} service(s) looked at`)} in ${r.durationMs.toFixed(1)} ms`);
      },
      onError: (err) => log(`sync loop: ${(err as Error).message}`),
    });
    this.single = { reconciler, loop };
  }

  /** The one reconciler over every environment (not on shards: each pair has its own there). */
  get reconciler(): Reconciler {
    if (!this.single) throw new SlipwayError('SHARDED', 'this controller runs on shards: each environment/cluster pair has its own reconciler (controller.sharded)', 'stalling');
    return this.single.reconciler;
  }

  get loop(): SyncLoop {
    if (!this.single) throw new SlipwayError('SHARDED', 'this controller runs on shards: each environment/cluster pair has its own sync loop (controller.sharded)', 'stalling');
    return this.single.loop;
  }

  /** Resume what a previous process left, sync, then follow the schedule and the webhook. */
  async start(): Promise<SyncReport> {
    if (this.sharded) {
      // Lease rounds every retry period; each pair won starts its own sync loop from its records on the cluster.
      this.sharded.start();
      return { trigger: 'startup', unchanged: false, changed: [], durationMs: 0 };
    }
    return this.loop.start();
  }

  /** One pass and return: replay, sync, and whatever became due. */
  async once(): Promise<SyncReport> {
    if (this.sharded) throw new SlipwayError('BAD_OPTION', 'a single pass (--once) runs on file state only; drop --leader-elect / --state cluster', 'stalling');
    await this.reconciler.open();
    await this.reconciler.runDue();
    const report = await this.reconciler.sync('startup', true);
    this.lastReport = report;
    await this.reconciler.runDue();
    return report;
  }

  trigger(trigger: 'webhook' | 'api' | 'interval'): Promise<SyncReport> {
    if (this.sharded) return this.sharded.trigger(trigger);
    return this.loop.trigger(trigger);
  }

  promote(environment: string, service: string, actor: string): Promise<ServiceRecord> {
    if (this.sharded) return this.sharded.promote(environment, service, actor);
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
    const result = this.sharded
      ? await this.sharded.rollback(environment, service, actor, reason)
      : await this.reconciler.rollback(environment, service, actor, reason);
    void this.trigger('api').catch(() => undefined);
    return result;
  }

  environments(): EnvironmentStatus[] {
    if (this.sharded) return shardedEnvironments(this.sharded);
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
    if (this.sharded) return shardedEnvironments(this.sharded).find((e) => e.environment === environment)?.services.find((s) => s.service === service);
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

  health(): { ok: boolean; startedAt: string; lastSync?: { trigger: string; head?: string; error?: string; durationMs: number }; leaderElection?: Record<string, unknown> } {
    // On shards a replica that runs no pair is healthy too: it serves status and waits for a shard.
    const r = this.sharded ? this.sharded.lastReports().find((x) => x.error) ?? this.sharded.lastReports()[0] : this.lastReport;
    return {
      ok: !r?.error,
      startedAt: this.startedAt.toISOString(),
      ...(r ? { lastSync: { trigger: r.trigger, ...(r.head ? { head: r.head } : {}), ...(r.error ? { error: r.error } : {}), durationMs: r.durationMs } } : {}),
      ...(this.sharded ? { leaderElection: this.sharded.health() } : {}),
    };
  }

  async stop(): Promise<void> {
    if (this.sharded) {
      await this.sharded.stop();
      return;
    }
    await this.loop.stop();
  }
}

/** Status on shards: every pair's records, live for pairs run here, as last read from the cluster otherwise. */
function shardedEnvironments(engine: ShardedEngine): EnvironmentStatus[] {
  const envs = new Map<string, EnvironmentStatus>();
  for (const r of engine.records()) {
    const env = envs.get(r.pair.environment) ?? { environment: r.pair.environment, services: [] };
    const e = r.environment;
    // Of several clusters, the one furthest behind speaks for the environment.
    if (e && (!env.lastSyncAt || (e.lastSyncAt && e.lastSyncAt < env.lastSyncAt))) {
      if (e.lastAppliedCommit) env.lastAppliedCommit = e.lastAppliedCommit;
      if (e.rejectedCommit) env.rejectedCommit = e.rejectedCommit;
      if (e.problems) env.problems = e.problems;
      if (e.lastSyncAt) env.lastSyncAt = e.lastSyncAt;
    }
    for (const rec of r.services) env.services.push({ ...serviceStatus(rec), cluster: r.pair.cluster });
    envs.set(r.pair.environment, env);
  }
  return [...envs.values()];
}
