/**
 * The reconcile shell: sync → gates → rollout core → target → state.
 *
 * One sync is an ordered list of steps (look up main; stop when nothing moved; load and validate the
 * whole commit; diff against the last applied commit; gate and roll out each changed service). Every
 * rollout transition is written ahead: the new state and the intents that carry it out are persisted
 * together before the first intent touches the target, and each applied intent is ticked off. A
 * controller killed at any instant replays the unticked, idempotent intents and decides nothing twice.
 */
import { SlipwayError, errorMessage } from '../../lib/errors.js';
import type { DesiredState, EnvironmentState } from '../../lib/envrepo/types.js';
import { runGates, isRollbackMessage } from '../gates/index.js';
import { parseTrailers, trailer, TRAILER } from '../../lib/gitprovider/index.js';
import { decide, initialState, requestPromote, rolloutSpecFrom, type Intent, type RolloutState } from '../rollout/index.js';
import type { ServiceRef, Target } from '../targets/types.js';
import type { AnalysisLabel } from '../analysis/types.js';
import type { StateStore } from '../state/index.js';
import { ControllerMetrics } from './metrics.js';
import type { AuditEntry, EnvironmentRecord, PendingIntents, ReconcilePorts, ServiceRecord, SyncReport, SyncTrigger } from './types.js';

/** Decisions one reconcile of one service may take before it yields (a guard, not a timing). */
const MAX_DECISIONS = 25;
/** A failed intent (target down, git push refused) is retried after this long. */
const RETRY_MS = 5000;
const ACTOR = 'slipway-controller';
/** Services of one commit reconciled at the same time. */
const SERVICE_CONCURRENCY = 8;

export interface ReconcilerOptions {
  ports: ReconcilePorts;
  store: StateStore;
  metrics?: ControllerMetrics;
  /** Only these environments (default: all in slipway.yaml). */
  environments?: string[];
  log?: (line: string) => void;
}

function key(environment: string, service: string): string {
  return `${environment}/${service}`;
}

export class Reconciler {
  readonly metrics: ControllerMetrics;
  private readonly ports: ReconcilePorts;
  private readonly store: StateStore;
  private readonly only?: Set<string>;
  private readonly log: (line: string) => void;
  private readonly records = new Map<string, ServiceRecord>();
  private readonly envRecords = new Map<string, EnvironmentRecord>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Called after any service changed when it wants to be woken (the loop re-arms its timer). */
  onWakeUpChanged?: () => void;
  private lastHead?: string;
  private lastState?: DesiredState;
  private loaded = false;

  constructor(options: ReconcilerOptions) {
    this.ports = options.ports;
    this.store = options.store;
    this.metrics = options.metrics ?? new ControllerMetrics();
    if (options.environments?.length) this.only = new Set(options.environments);
    this.log = options.log ?? (() => undefined);
  }

  /** Read every persisted record once (a restart picks up where the last process stopped). */
  async open(): Promise<void> {
    if (this.loaded) return;
    for (const environment of await this.store.listEnvironments()) {
      if (this.only && !this.only.has(environment)) continue;
      const env = await this.store.loadEnvironment(environment);
      if (env) this.envRecords.set(environment, env);
      for (const service of await this.store.listServices(environment)) {
        const rec = await this.store.loadService(environment, service);
        if (rec) this.records.set(key(environment, service), rec);
      }
    }
    this.loaded = true;
    this.refreshPhaseMetrics();
  }

  /** Every record, for status. */
  serviceRecords(): ServiceRecord[] {
    return [...this.records.values()].sort((a, b) => key(a.environment, a.service).localeCompare(key(b.environment, b.service)));
  }

  environmentRecords(): EnvironmentRecord[] {
    return [...this.envRecords.values()].sort((a, b) => a.environment.localeCompare(b.environment));
  }

  record(environment: string, service: string): ServiceRecord | undefined {
    return this.records.get(key(environment, service));
  }

  /** Earliest moment a service wants attention again (a pause ending, a freeze window closing, a retry). */
  nextWakeUp(): Date | undefined {
    let next: number | undefined;
    for (const rec of this.records.values()) {
      for (const at of [rec.requeueAt, rec.gate?.status === 'waiting' ? (rec.gate.until ?? rec.requeueAt) : undefined]) {
        if (!at) continue;
        const t = Date.parse(at);
        if (next === undefined || t < next) next = t;
      }
    }
    return next === undefined ? undefined : new Date(next);
  }

  private async serial<T>(k: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(k) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.locks.set(k, settled);
    try {
      return await run;
    } finally {
      if (this.locks.get(k) === settled) this.locks.delete(k);
    }
  }

  /** One sync of main. `force` re-reads the commit even when main has not moved. */
  sync(trigger: SyncTrigger, force = false): Promise<SyncReport> {
    return this.serial('\0sync', () => this.syncNow(trigger, force));
  }

  private async syncNow(trigger: SyncTrigger, force: boolean): Promise<SyncReport> {
    await this.open();
    const started = performance.now();
    const report: SyncReport = { trigger, unchanged: false, changed: [], durationMs: 0 };
    let result = 'applied';
    try {
      const head = await this.ports.source.head();
      report.head = head;
      if (!force && head === this.lastHead) {
        report.unchanged = true;
        result = 'unchanged';
        return report;
      }
      const loaded = await this.ports.source.load(head);
      if (!loaded.ok) {
        result = 'rejected';
        report.problems = loaded.problems;
        await this.rejectCommit(head, loaded.problems);
        this.lastHead = head;
        return report;
      }
      this.lastState = loaded.state;
      for (const env of loaded.state.environments) {
        if (this.only && !this.only.has(env.name)) continue;
        report.changed.push(...(await this.syncEnvironment(env, loaded.state, head)));
      }
      this.lastHead = head;
    } catch (err) {
      result = 'error';
      report.error = errorMessage(err);
      this.log(`sync failed: ${report.error}`);
    } finally {
      report.durationMs = performance.now() - started;
      this.metrics.reconcileDuration.observe({ trigger, result }, report.durationMs / 1000);
      this.metrics.syncs.inc({ trigger, result });
    }
    return report;
  }

  private async rejectCommit(head: string, problems: NonNullable<SyncReport['problems']>): Promise<void> {
    const names = this.lastState?.environments.map((e) => e.name) ?? [...this.envRecords.keys()];
    const first = problems[0];
    const summary = first ? `${first.file}:${first.line}:${first.column} ${first.path ? `${first.path}: ` : ''}${first.message}` : 'invalid commit';
    for (const environment of names.length > 0 ? names : ['_repository']) {
      if (this.only && !this.only.has(environment)) continue;
      const rec: EnvironmentRecord = { ...(this.envRecords.get(environment) ?? { environment }), rejectedCommit: head, problems, lastSyncAt: this.now().toISOString() };
      if (environment !== '_repository') {
        this.envRecords.set(environment, rec);
        await this.store.saveEnvironment(rec);
      }
      this.metrics.refusals.inc({ environment, code: 'INVALID_COMMIT' });
      await this.audit({
        id: `commit-rejected/${environment}/${head}`,
        environment,
        action: 'CommitRejected',
        message: `commit ${head.slice(0, 12)} not applied: ${problems.length} problem(s); staying on ${rec.lastAppliedCommit?.slice(0, 12) ?? 'nothing'}. First: ${summary}`,
        commit: head,
        data: { problems },
      });
    }
    this.log(`commit ${head.slice(0, 12)} rejected: ${summary}`);
  }

  private async syncEnvironment(env: EnvironmentState, state: DesiredState, head: string): Promise<SyncReport['changed']> {
    const envRec: EnvironmentRecord = this.envRecords.get(env.name) ?? { environment: env.name };
    const from = envRec.lastAppliedCommit;
    const diff = await this.ports.source.diff(from, head);
    const touched = new Set<string>();
    // A file outside services/ (trust policy, quarantine, keys, environment or freeze settings) can change
    // the verdict for every service of the environment: gate them all again.
    const global = diff.otherFiles.some((f) => !f.includes('/') || f.startsWith(`${env.name}/`));
    if (global) {
      for (const name of Object.keys(env.services)) touched.add(name);
      for (const rec of this.records.values()) if (rec.environment === env.name) touched.add(rec.service);
    }
    for (const change of diff.services) if (change.environment === env.name) touched.add(change.service);
    // Services held by a gate are looked at again on every new commit (a key or a quarantine may have changed).
    for (const rec of this.records.values()) if (rec.environment === env.name && rec.gate) touched.add(rec.service);

    // Services are independent: a few at a time, so a commit touching many does not pay their disk
    // syncs one after another (each service still runs under its own lock).
    const names = [...touched].sort();
    const outcomes = new Array<string>(names.length);
    let cursor = 0;
    const worker = async () => {
      for (let i = cursor++; i < names.length; i = cursor++) {
        const service = names[i]!;
        outcomes[i] = await this.serial(key(env.name, service), () => this.applyChange(env, service, state, head));
      }
    };
    await Promise.all(Array.from({ length: Math.min(SERVICE_CONCURRENCY, names.length) }, worker));
    const changed: SyncReport['changed'] = names.map((service, i) => ({ environment: env.name, service, outcome: outcomes[i]! }));
    const next: EnvironmentRecord = { environment: env.name, lastAppliedCommit: head, lastSyncAt: this.now().toISOString() };
    this.envRecords.set(env.name, next);
    await this.store.saveEnvironment(next);
    this.refreshPhaseMetrics();
    return changed;
  }

  /** Gate one service's change at `head`; when it passes, hand the new spec to the rollout. */
  private async applyChange(env: EnvironmentState, service: string, state: DesiredState, head: string): Promise<string> {
    const k = key(env.name, service);
    const config = env.services[service];
    const rec: ServiceRecord = this.records.get(k) ?? { environment: env.name, service, state: initialState(env.name, service) };
    if (!config && !this.records.has(k)) return 'absent';
    const path = `${env.name}/services/${service}.yaml`;
    const touching = await this.ports.source.commitsTouching(path, rec.commit, head, 1);
    const rollback = touching.length > 0 && isRollbackMessage(touching[0]!.message);
    const freezeOverride = touching.length > 0 ? trailer(parseTrailers(touching[0]!.message), TRAILER.freezeOverride) : undefined;
    const now = this.now();

    const gate = await runGates(
      {
        environment: env.name,
        service,
        commit: head,
        ...(config ? { config } : {}),
        ...(rec.spec ? { currentDigest: rec.spec.digest } : {}),
        rollback,
        ...(freezeOverride ? { freezeOverride } : {}),
        quarantine: state.quarantine,
        policy: state.config.spec.trust,
        publicKeys: state.publicKeys,
        ...(env.freeze ? { freeze: env.freeze } : {}),
        now,
      },
      { verifier: this.ports.verifier, freeze: this.ports.freeze },
    );

    if (config) {
      rec.desiredDigest = config.spec.image.digest;
      rec.desiredCommit = head;
    }
    if (gate.status !== 'pass') {
      const isNew = rec.gate?.code !== gate.code || rec.gate?.digest !== gate.digest || rec.gate?.commit !== gate.commit;
      rec.gate = gate;
      if (gate.status === 'waiting') {
        const wake = gate.until ?? new Date(now.getTime() + RETRY_MS).toISOString();
        if (!rec.requeueAt || Date.parse(wake) < Date.parse(rec.requeueAt)) rec.requeueAt = wake;
      }
      this.records.set(k, rec);
      await this.store.saveService(rec);
      this.onWakeUpChanged?.();
      if (isNew) {
        this.metrics.refusals.inc({ environment: env.name, code: gate.code });
        await this.audit({
          id: `gate/${k}/${head}/${gate.code}`,
          environment: env.name,
          service,
          action: gate.status === 'refused' ? 'ChangeRefused' : 'ChangeWaiting',
          message: gate.message,
          commit: head,
          digest: gate.digest,
          data: { code: gate.code, ...(gate.until ? { until: gate.until } : {}) },
        });
        this.log(`${k}: ${gate.status} ${gate.code}: ${gate.message}`);
      }
      return `${gate.status}:${gate.code}`;
    }

    delete rec.gate;
    if (!config) {
      await this.ports.targetFor(env.name).removeService({ environment: env.name, service });
      this.records.delete(k);
      await this.store.removeService(env.name, service);
      await this.audit({ id: `removed/${k}/${head}`, environment: env.name, service, action: 'ServiceRemoved', message: `${service} left ${env.name}: its instances were stopped`, commit: head });
      return 'removed';
    }
    rec.spec = rolloutSpecFrom(config, env.config);
    rec.commit = head;
    if (gate.freezeOverridden) {
      const o = gate.freezeOverridden;
      await this.audit({
        id: `freeze-override/${k}/${touching[0]!.oid}`,
        environment: env.name,
        service,
        action: 'FreezeOverridden',
        message: `applied inside freeze window "${o.window}" (until ${o.until}) by the override recorded in ${touching[0]!.oid.slice(0, 12)}: ${o.reason}`,
        commit: head,
        digest: config.spec.image.digest,
        data: { window: o.window, until: o.until, reason: o.reason, overrideCommit: touching[0]!.oid },
      });
      this.log(`${k}: freeze window "${o.window}" overridden (${o.reason})`);
    }
    if (rollback) {
      await this.audit({
        id: `rollback-commit/${k}/${touching[0]!.oid}`,
        environment: env.name,
        service,
        action: 'RollbackCommitApplied',
        message: `revert commit ${touching[0]!.oid.slice(0, 12)} applied (freeze windows do not hold rollbacks)`,
        commit: head,
        digest: config.spec.image.digest,
      });
    }
    this.records.set(k, rec);
    // drive() persists the record with its first decision; save here only if it may decide nothing.
    if (rec.state.desired?.digest === rec.spec.digest && rec.state.desired.revision === rec.spec.revision) await this.store.saveService(rec);
    await this.drive(rec, true);
    return rec.state.phase;
  }

  /** Look at every service whose wake-up time has come: pauses ending, analyses due, freeze windows closing. */
  async runDue(): Promise<number> {
    await this.open();
    const now = this.now().getTime();
    let count = 0;
    for (const rec of [...this.records.values()]) {
      const gateOpen = rec.gate?.status === 'waiting' && Date.parse(rec.gate.until ?? rec.requeueAt ?? '0') <= now;
      const due = gateOpen || (rec.requeueAt !== undefined && Date.parse(rec.requeueAt) <= now);
      if (!due && !rec.pending) continue;
      count += 1;
      await this.serial(key(rec.environment, rec.service), async () => {
        if (gateOpen && this.lastState && this.lastHead) {
          const env = this.lastState.environments.find((e) => e.name === rec.environment);
          if (env) {
            delete rec.requeueAt;
            await this.applyChange(env, rec.service, this.lastState, this.lastHead);
            return;
          }
        }
        if (gateOpen && !this.lastState) {
          // Restarted: nothing loaded yet; the next sync (forced at start) re-gates it.
          return;
        }
        await this.drive(rec);
      });
    }
    this.refreshPhaseMetrics();
    return count;
  }

  /**
   * A person's rollback: the same revert commit a breach makes, of the change that brought the digest
   * main names now. The controller then applies the revert like any commit (freeze windows let it through).
   */
  async rollback(environment: string, service: string, actor: string, reason: string): Promise<{ commit: string; revertedCommit: string; restoredDigest: string }> {
    const k = key(environment, service);
    const rec = this.records.get(k);
    const badDigest = rec?.desiredDigest ?? rec?.spec?.digest;
    if (!rec || !badDigest) throw new SlipwayError('NOT_FOUND', `no service ${service} in ${environment}`, 'stalling', { environment, service });
    const result = await this.ports.rollback.revert({ environment, service, badDigest, reason, actor, quarantine: true });
    await this.audit({
      id: `manual-rollback/${k}/${result.commit}`,
      environment,
      service,
      actor,
      action: 'RollbackRequested',
      message: `${actor} rolled back ${badDigest}: revert commit ${result.commit.slice(0, 12)} of ${result.revertedCommit.slice(0, 12)} (${reason})`,
      commit: result.commit,
      digest: badDigest,
    });
    return result;
  }

  /** A person's promote: ends a pause or accepts a held analysis. */
  async promote(environment: string, service: string, actor: string): Promise<ServiceRecord> {
    const k = key(environment, service);
    return this.serial(k, async () => {
      const rec = this.records.get(k);
      if (!rec) throw new SlipwayError('NOT_FOUND', `no service ${service} in ${environment}`, 'stalling', { environment, service });
      const result = requestPromote(rec.state);
      if (!result.ok) throw new SlipwayError('NOT_PAUSED', result.reason, 'stalling', { phase: rec.state.phase });
      rec.state = result.state;
      await this.store.saveService(rec);
      await this.audit({
        id: `promote/${k}/${rec.state.generation}.${rec.state.intentSeq}/${this.now().toISOString()}`,
        environment,
        service,
        action: 'PromoteRequested',
        actor,
        message: `${actor} promoted the paused rollout at step ${rec.state.stepIndex + 1}`,
        ...(rec.state.desired ? { digest: rec.state.desired.digest } : {}),
      });
      await this.drive(rec);
      return rec;
    });
  }

  /** Decide and apply until the rollout has to wait. */
  private async drive(rec: ServiceRecord, mustSave = false): Promise<void> {
    const target = this.ports.targetFor(rec.environment);
    const ref: ServiceRef = { environment: rec.environment, service: rec.service };
    try {
      if (rec.pending) await this.applyPending(rec, target);
      for (let i = 0; i < MAX_DECISIONS; i++) {
        const observation = await target.observe(ref);
        const verdict = rec.pending?.verdict;
        const decision = decide(rec.state, { target: observation, ...(verdict ? { verdict } : {}) }, this.now(), rec.spec);
        const stateChanged = JSON.stringify(decision.state) !== JSON.stringify(rec.state);
        rec.state = decision.state;
        if (decision.requeueAt) rec.requeueAt = decision.requeueAt;
        else delete rec.requeueAt;
        if (decision.intents.length === 0) {
          if (stateChanged || rec.pending || (mustSave && i === 0)) {
            delete rec.pending;
            await this.store.saveService(rec);
          }
          return;
        }
        if (decision.intents.every((x) => x.type === 'emitEvent')) {
          // Events only: record them first, then the state (a replay re-emits the same ids, recorded once).
          rec.pending = { intents: decision.intents, applied: [], started: [] };
          await this.applyPending(rec, target);
          delete rec.pending;
          await this.store.saveService(rec);
          return;
        }
        // Write-ahead: the new state and the intents that carry it out, on disk before the target sees any.
        rec.pending = { intents: decision.intents, applied: [], started: [] };
        await this.store.saveService(rec);
        await this.applyPending(rec, target);
      }
    } catch (err) {
      rec.requeueAt = new Date(this.now().getTime() + RETRY_MS).toISOString();
      rec.state = { ...rec.state, message: `retrying: ${errorMessage(err)}` };
      await this.store.saveService(rec);
      this.log(`${key(rec.environment, rec.service)}: ${errorMessage(err)} (retry in ${RETRY_MS / 1000}s)`);
    } finally {
      this.records.set(key(rec.environment, rec.service), rec);
      this.onWakeUpChanged?.();
    }
  }

  /**
   * Apply what is not ticked off yet. Target intents are idempotent, so a replay after a crash repeats
   * at most a call that changes nothing; audit entries are written in one append per batch.
   */
  private async applyPending(rec: ServiceRecord, target: Target): Promise<void> {
    const pending = rec.pending as PendingIntents;
    const ref: ServiceRef = { environment: rec.environment, service: rec.service };
    const events: AuditEntry[] = [];
    const flush = async () => {
      if (events.length === 0) return;
      const batch = events.splice(0);
      if (this.ports.audit.recordMany) await this.ports.audit.recordMany(batch);
      else for (const e of batch) await this.ports.audit.record(e);
    };
    /** Target intents applied but not yet ticked off on disk. */
    let unsaved = false;
    for (const intent of pending.intents) {
      if (pending.applied.includes(intent.id)) continue;
      if (intent.type === 'emitEvent') {
        events.push(this.eventEntry(rec, intent));
      } else {
        // A promote or a track removal changes what later replays would act on: what was applied before
        // it is ticked off on disk first, and it is ticked off right after (so a replay never sends weight
        // to a canary that was already promoted or removed, and never reverts twice).
        const topology = intent.type === 'promote' || intent.type === 'removeTrack' || intent.type === 'revert';
        if (topology && unsaved) {
          await flush();
          await this.store.saveService(rec);
          unsaved = false;
        }
        await this.applyIntent(rec, pending, intent, target, ref);
        pending.applied.push(intent.id);
        if (topology) {
          await flush();
          await this.store.saveService(rec);
        } else {
          unsaved = true;
        }
        continue;
      }
      pending.applied.push(intent.id);
    }
    await flush();
  }

  private eventEntry(rec: ServiceRecord, intent: Extract<Intent, { type: 'emitEvent' }>): AuditEntry {
    const e = intent.event;
    if (e.kind === 'RolledBack') this.metrics.rollbacks.inc({ environment: e.environment, service: e.service });
    this.log(`${e.environment}/${e.service}: ${e.kind}: ${e.message}`);
    return {
      id: intent.id,
      at: this.now().toISOString(),
      actor: ACTOR,
      environment: e.environment,
      service: e.service,
      action: e.kind,
      message: e.message,
      ...(rec.commit ? { commit: rec.commit } : {}),
      ...(e.digest ? { digest: e.digest } : {}),
      ...(e.data ? { data: e.data } : {}),
    };
  }

  private async applyIntent(rec: ServiceRecord, pending: PendingIntents, intent: Intent, target: Target, ref: ServiceRef): Promise<void> {
    switch (intent.type) {
      case 'ensureTrack':
        return target.ensureTrack(ref, intent.track, intent.spec);
      case 'setWeight':
        return target.setWeight(ref, intent.weight);
      case 'promote':
        return target.promote(ref);
      case 'removeTrack':
        return target.removeTrack(ref, intent.track);
      case 'runAnalysis': {
        const spec = rec.spec!;
        try {
          const verdict = await this.ports.analysis.analyze({
            environment: rec.environment,
            service: rec.service,
            slos: spec.slos,
            settings: spec.analysisSettings,
            start: new Date(intent.start),
            end: new Date(intent.end),
            ...analysisLabelOf(intent.label, rec.state.stepStartedAt),
          });
          pending.verdict = { id: intent.id, outcome: verdict.outcome, summary: verdict.summary };
        } catch (err) {
          // A provider that cannot answer is no evidence either way.
          pending.verdict = { id: intent.id, outcome: 'inconclusive', summary: `analysis provider failed: ${errorMessage(err)}` };
        }
        return;
      }
      case 'revert':
        return this.revert(rec, pending, intent);
      case 'emitEvent':
        await this.ports.audit.record(this.eventEntry(rec, intent));
        return;
    }
  }

  /** Not idempotent: recorded as started first, and on a replay only redone when git shows no revert yet. */
  private async revert(rec: ServiceRecord, pending: PendingIntents, intent: Extract<Intent, { type: 'revert' }>): Promise<void> {
    if (pending.started.includes(intent.id)) {
      const head = await this.ports.source.head();
      const touching = await this.ports.source.commitsTouching(`${rec.environment}/services/${rec.service}.yaml`, rec.commit, head, 1);
      if (touching.length > 0 && isRollbackMessage(touching[0]!.message)) return;
    } else {
      pending.started.push(intent.id);
      await this.store.saveService(rec);
    }
    const result = await this.ports.rollback.revert({
      environment: rec.environment,
      service: rec.service,
      badDigest: intent.badDigest,
      reason: intent.reason,
      summary: intent.summary,
      actor: ACTOR,
      quarantine: true,
    });
    rec.lastRevert = { ...result, at: this.now().toISOString() };
    await this.audit({
      id: `${intent.id}/revert`,
      environment: rec.environment,
      service: rec.service,
      action: 'RevertCommitted',
      message: `revert commit ${result.commit.slice(0, 12)} of ${result.revertedCommit.slice(0, 12)} pushed: back to ${result.restoredDigest}`,
      commit: result.commit,
      digest: intent.badDigest,
      data: { reason: intent.reason, restoredDigest: result.restoredDigest, explicit: result.explicit },
    });
  }

  private async audit(entry: Omit<AuditEntry, 'at' | 'actor'> & { actor?: string }): Promise<void> {
    await this.ports.audit.record({ at: this.now().toISOString(), actor: ACTOR, ...entry });
  }

  private now(): Date {
    return this.ports.clock.now();
  }

  private refreshPhaseMetrics(): void {
    const byEnv = new Map<string, RolloutState['phase'][]>();
    for (const rec of this.records.values()) {
      const list = byEnv.get(rec.environment) ?? [];
      list.push(rec.state.phase);
      byEnv.set(rec.environment, list);
    }
    for (const [env, phases] of byEnv) this.metrics.setPhases(env, phases);
  }
}

/**
 * Which step asks for analysis. After a blue-green switch the old version serves nothing, so the judge reads its
 * baseline from the window just before the switch: the post-switch analysis step starts when the switch completed.
 */
function analysisLabelOf(label: string, stepStartedAt: string | undefined): { label?: AnalysisLabel; switchedAt?: Date } {
  if (label !== 'canary' && label !== 'preview' && label !== 'postSwitch') return {};
  if (label === 'postSwitch' && stepStartedAt) return { label, switchedAt: new Date(stepStartedAt) };
  return { label };
}
