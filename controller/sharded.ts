/**
 * The controller on shards: every environment/cluster pair is reconciled by the one replica that holds its
 * shard's Lease, by a Reconciler of its own (restricted to the environment, the pair's cluster as its only
 * target, its records and audit trail in the pair's ConfigMap, claimed for this replica before it reads them).
 *
 * No two writers: a worker is revoked synchronously when its shard is lost, or when the shard's last renewal is
 * older than the renew deadline (checked on every target call and store write, so a process that was paused and
 * wakes up does not act on a lease it no longer has); and the pair's ConfigMap refuses writes from anyone but
 * the replica that claimed it last (compare-and-swap on its resourceVersion).
 *
 * Replicas that do not run a pair still answer for it: status comes from the pair's ConfigMap, re-read at the
 * lease round after a status request (so it is at most a retry period old while someone watches, and nobody pays
 * for the read when nobody does); promote and rollback say which replica to ask (503 NOT_LEADER).
 */
import { Gauge } from 'prom-client';
import { SlipwayError, errorMessage } from '../lib/errors.js';
import { pairKey, type Pair, type PairWorker, type ShardManager, type ShardedRunner } from './leader/index.js';
import { createShardedRunner } from './leader/index.js';
import { Reconciler, type ControllerMetrics } from './reconcile/index.js';
import type { AuditEntry, EnvironmentRecord, ReconcilePorts, ServiceRecord, SyncReport, SyncTrigger } from './reconcile/index.js';
import { SyncLoop } from './sync/index.js';
import type { Target } from './targets/types.js';
import type { ControllerRecordStore } from './targets/kubernetes/index.js';

export type PairStore = ControllerRecordStore<ServiceRecord, EnvironmentRecord>;

/** Pairs run elsewhere are re-read at the next lease round after a status request, and at least this often. */
const SNAPSHOT_MAX_AGE_MS = 30_000;

/** What one pair's ConfigMap holds, as any replica reads it. */
export interface PairRecords {
  pair: Pair;
  environment?: EnvironmentRecord;
  services: ServiceRecord[];
  /** The replica that claimed the records last. */
  writer?: string;
}

export interface ShardingOptions {
  shards: ShardManager;
  /** This replica's name in Leases and in the records it claims. */
  identity: string;
  /** The environment/cluster pairs main names now. */
  pairs: () => Pair[];
  /** The pair's records and audit trail, writable only by `identity` once claimed. */
  storeFor: (pair: Pair) => PairStore;
  /** The pair's cluster as a target. */
  targetFor: (pair: Pair) => Target;
  /** Every pair's records (for status of pairs run elsewhere): one read per lease round. */
  readAll: () => Promise<PairRecords[]>;
  /** Audit entries of a service across its pairs, from the cluster. */
  history: (filter: { environment?: string; service?: string }) => Promise<AuditEntry[]>;
}

interface RunningPair {
  pair: Pair;
  reconciler: Reconciler;
  loop: SyncLoop;
  store: PairStore;
  lastReport?: SyncReport;
}

export type CommonPorts = Omit<ReconcilePorts, 'targetFor' | 'audit'>;

export class ShardedEngine {
  readonly runner: ShardedRunner;
  private readonly running = new Map<string, RunningPair>();
  private snapshot: PairRecords[] = [];
  private snapshotAt = 0;
  private snapshotWanted = true;
  /** Sync loops of revoked pairs still finishing what they had in flight (refused writes). */
  private readonly stopping = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private done?: Promise<void>;
  private lastRoundAt?: Date;
  private lastError?: string;

  constructor(
    private readonly options: ShardingOptions,
    private readonly ports: CommonPorts,
    private readonly metrics: ControllerMetrics,
    private readonly schedule: string | undefined,
    private readonly log: (line: string) => void,
  ) {
    this.runner = createShardedRunner({
      shards: options.shards,
      pairs: () => options.pairs(),
      start: (pair) => this.startPair(pair),
      onError: (pair, err) => {
        this.lastError = `${pairKey(pair)}: ${errorMessage(err)}`;
        log(`shard worker ${pairKey(pair)}: ${errorMessage(err)}`);
      },
      onRound: async () => {
        this.lastRoundAt = new Date();
        // One LIST of every pair's ConfigMap: only after someone asked for status, or now and then, not every round.
        const stale = Date.now() - this.snapshotAt >= SNAPSHOT_MAX_AGE_MS;
        if (!this.snapshotWanted && !stale) return;
        this.snapshotWanted = false;
        try {
          this.snapshot = await options.readAll();
          this.snapshotAt = Date.now();
        } catch (err) {
          log(`cannot read the records of other replicas: ${errorMessage(err)}`);
        }
      },
    });
    const runner = this.runner;
    new Gauge({
      name: 'slipway_shard_held',
      help: 'Whether this replica holds the shard Lease (1) and reconciles its environment/cluster pairs',
      labelNames: ['shard'],
      registers: [metrics.registry],
      collect() {
        const held = new Set(options.shards.held());
        for (let i = 0; i < options.shards.shards; i++) this.set({ shard: String(i) }, held.has(i) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'slipway_pairs_running',
      help: 'Environment/cluster pairs this replica reconciles now',
      registers: [metrics.registry],
      collect() {
        this.set(runner.running().length);
      },
    });
  }

  /** Whether this replica may still act for the pair: it holds the shard and renewed it within the deadline. */
  private owns(pair: Pair): boolean {
    const { shard } = this.runner.ownerOf(pair);
    return this.options.shards.enforceRenewDeadlines().includes(shard);
  }

  private async startPair(pair: Pair): Promise<PairWorker> {
    const key = pairKey(pair);
    let revoked: string | undefined;
    const check = () => {
      if (!revoked && !this.owns(pair)) revoked = 'the shard Lease was not renewed within the renew deadline';
      if (revoked) throw new SlipwayError('FENCED', `${key}: ${revoked}; this replica stopped reconciling it`, 'waiting', { environment: pair.environment, cluster: pair.cluster });
    };
    const inner = this.options.storeFor(pair);
    // Claimed under the shard's Lease term: if this replica lost the shard while claiming, a newer term's claim wins.
    const token = this.options.shards.tokenOf(this.runner.ownerOf(pair).shard);
    if (!this.owns(pair)) throw new SlipwayError('FENCED', `${key}: the shard was lost before the pair started here`, 'waiting');
    const previous = await inner.claim(pair.environment, token);
    const store = guardStore(inner, check);
    // Resolved on every call: environment.yaml may change the cluster's settings while the pair runs.
    const targetFor = () => guardTarget(this.options.targetFor(pair), check);
    const reconciler = new Reconciler({
      store,
      metrics: this.metrics,
      environments: [pair.environment],
      log: (line) => this.log(`[${key}] ${line}`),
      ports: { ...this.ports, targetFor, audit: store },
    });
    const entry: RunningPair = { pair, reconciler, loop: undefined as unknown as SyncLoop, store };
    entry.loop = new SyncLoop({
      reconciler,
      ...(this.schedule ? { schedule: this.schedule } : {}),
      onReport: (r) => {
        entry.lastReport = r;
        if (!r.unchanged) this.log(`[${key}] sync (${r.trigger}) ${r.head?.slice(0, 12) ?? '?'}: ${r.error ?? (r.problems ? `rejected, ${r.problems.length} problem(s)` : `${r.changed.length} service(s) looked at`)}`);
      },
      onError: (err) => this.log(`[${key}] sync loop: ${errorMessage(err)}`),
    });
    this.running.set(key, entry);
    this.log(`[${key}] this replica (${this.options.identity}) took the pair over${previous && previous !== this.options.identity ? ` from ${previous}` : ''}; resuming from its records on the cluster`);
    // The first sync runs in the background: the lease rounds must go on while it works.
    void entry.loop.start().catch((err: unknown) => this.log(`[${key}] start: ${errorMessage(err)}`));
    return {
      revoke: (reason) => {
        revoked ??= reason;
        inner.revoke(reason);
      },
      stop: async () => {
        if (this.running.get(key) === entry) this.running.delete(key);
        this.log(`[${key}] stopped reconciling: ${revoked ?? 'stopping'}`);
        // Revoked already, so whatever is in flight can no longer write; do not hold the lease rounds up for it.
        const stopped = entry.loop.stop();
        this.stopping.add(stopped);
        void stopped.finally(() => this.stopping.delete(stopped));
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([stopped, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.shards.timing.retryPeriodMs)))]);
        clearTimeout(timer);
      },
    };
  }

  start(): void {
    this.done ??= this.runner.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    if (this.done) await this.done;
    else await this.runner.stop();
    // Shutting down, there is time to let every loop finish (each one's writes are refused already).
    await Promise.allSettled([...this.stopping]);
  }

  /** Run one lease round now (tests and `--once`-like callers). */
  step(): Promise<Pair[]> {
    return this.runner.step();
  }

  runningPairs(): Pair[] {
    return this.runner.running();
  }

  /** Every pair's records: live ones for pairs run here, the last read of the cluster for the others. */
  records(): PairRecords[] {
    this.snapshotWanted = true;
    const byKey = new Map(this.snapshot.map((r) => [pairKey(r.pair), r]));
    for (const [key, p] of this.running) {
      const environment = p.reconciler.environmentRecords().find((e) => e.environment === p.pair.environment);
      byKey.set(key, { pair: p.pair, ...(environment ? { environment } : {}), services: p.reconciler.serviceRecords(), writer: this.options.identity });
    }
    return [...byKey.values()].sort((a, b) => pairKey(a.pair).localeCompare(pairKey(b.pair)));
  }

  /** Running pairs of an environment (optionally one cluster). */
  private local(environment: string, cluster?: string): RunningPair[] {
    return [...this.running.values()].filter((p) => p.pair.environment === environment && (!cluster || p.pair.cluster === cluster));
  }

  private notHere(environment: string, service: string): SlipwayError {
    const pairs = this.options.pairs().filter((p) => p.environment === environment);
    if (pairs.length === 0) return new SlipwayError('NOT_FOUND', `no service ${service} in ${environment}`, 'stalling', { environment, service });
    const owners = pairs.map((p) => {
      const o = this.runner.ownerOf(p);
      return `${p.cluster}: shard ${o.shard}, ${o.holder ? `replica ${o.holder}` : 'no replica yet'}`;
    });
    return new SlipwayError(
      'NOT_LEADER',
      `${environment}/${service} is reconciled by another replica (${owners.join('; ')}); this is ${this.options.identity}: send the request there or to the Service`,
      'waiting',
      { environment, service },
    );
  }

  async promote(environment: string, service: string, actor: string): Promise<ServiceRecord> {
    const here = this.local(environment).filter((p) => p.reconciler.record(environment, service));
    if (here.length === 0) throw this.notHere(environment, service);
    let first: ServiceRecord | undefined;
    for (const p of here) {
      const rec = await p.reconciler.promote(environment, service, actor);
      first ??= rec;
    }
    return first!;
  }

  async rollback(environment: string, service: string, actor: string, reason: string): Promise<{ commit: string; revertedCommit: string; restoredDigest: string }> {
    const here = this.local(environment).find((p) => p.reconciler.record(environment, service));
    if (!here) throw this.notHere(environment, service);
    return here.reconciler.rollback(environment, service, actor, reason);
  }

  async trigger(trigger: SyncTrigger): Promise<SyncReport> {
    const started = performance.now();
    const reports = await Promise.all([...this.running.values()].map((p) => p.loop.trigger(trigger)));
    const error = reports.find((r) => r.error)?.error;
    const problems = reports.find((r) => r.problems)?.problems;
    return {
      trigger,
      unchanged: reports.every((r) => r.unchanged),
      changed: reports.flatMap((r) => r.changed),
      ...(reports[0]?.head ? { head: reports[0].head } : {}),
      ...(error ? { error } : {}),
      ...(problems ? { problems } : {}),
      durationMs: performance.now() - started,
    };
  }

  /** An audit entry about a pair (drift repaired on its cluster): into that pair's trail, if it runs here. */
  async recordFor(entry: AuditEntry, cluster: string | undefined): Promise<void> {
    const p = this.local(entry.environment, cluster)[0];
    if (!p) throw this.notHere(entry.environment, entry.service ?? '-');
    await p.store.record(entry);
  }

  history(filter: { environment?: string; service?: string }): Promise<AuditEntry[]> {
    return this.options.history(filter);
  }

  lastReports(): SyncReport[] {
    return [...this.running.values()].flatMap((p) => (p.lastReport ? [p.lastReport] : []));
  }

  health(): Record<string, unknown> {
    const shards = this.options.shards;
    return {
      identity: this.options.identity,
      shards: shards.shards,
      held: shards.held(),
      leaders: Object.fromEntries(Array.from({ length: shards.shards }, (_, i) => [String(i), shards.holderOf(i) ?? null])),
      pairs: this.runner.running().map(pairKey),
      lease: { durationMs: shards.timing.leaseDurationMs, renewDeadlineMs: shards.timing.renewDeadlineMs, retryPeriodMs: shards.timing.retryPeriodMs },
      ...(this.lastRoundAt ? { lastRoundAt: this.lastRoundAt.toISOString() } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }
}

function guardTarget(target: Target, check: () => void): Target {
  const guarded = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    check();
    return fn(...args);
  };
  return {
    ...target,
    ensureTrack: guarded(target.ensureTrack.bind(target)),
    setWeight: guarded(target.setWeight.bind(target)),
    promote: guarded(target.promote.bind(target)),
    removeTrack: guarded(target.removeTrack.bind(target)),
    removeService: guarded(target.removeService.bind(target)),
    observe: guarded(target.observe.bind(target)),
    // Closing is the resolver's business: the target outlives one pair worker.
    close: async () => undefined,
  };
}

function guardStore(store: PairStore, check: () => void): PairStore {
  const write = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    check();
    return fn(...args);
  };
  return {
    ...store,
    dir: store.dir,
    loadService: store.loadService.bind(store),
    listServices: store.listServices.bind(store),
    listEnvironments: store.listEnvironments.bind(store),
    loadEnvironment: store.loadEnvironment.bind(store),
    list: store.list.bind(store),
    saveService: write(store.saveService.bind(store)),
    removeService: write(store.removeService.bind(store)),
    saveEnvironment: write(store.saveEnvironment.bind(store)),
    record: write(store.record.bind(store)),
    recordMany: write(store.recordMany.bind(store)),
    claim: store.claim.bind(store),
    revoke: store.revoke.bind(store),
  };
}
