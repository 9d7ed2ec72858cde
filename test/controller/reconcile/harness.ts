/** A controller shell wired to real git, real files and an honest in-memory target, with a clock the test moves. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Reconciler, type EnvironmentSource, type FreezeCalendar, type ProvenanceVerifier } from '../../../controller/reconcile/index.js';
import { GitEnvironmentSource } from '../../../controller/sync/index.js';
import { FileAuditLog, StateStore } from '../../../controller/state/index.js';
import { freezeCalendar } from '../../../controller/gates/index.js';
import type { AnalysisProvider, Outcome } from '../../../controller/analysis/types.js';
import type { RefusalCode } from '../../../lib/provenance/types.js';
import { MemoryTarget } from '../../support/memory-target.js';
import { EnvRepo, type ServiceOptions } from '../../support/envrepo.js';
import { GitCliRevert } from '../../support/git-revert.js';
import type { FreezeWindow } from '../../../schemas/index.js';

/** Fixed windows written in UTC are enough here; zones and recurrence are lib/freeze's tests. */
export const utcFixedWindows = freezeCalendar({
  activeWindows(windows: readonly FreezeWindow[], at: Date) {
    return windows.flatMap((w) => {
      if (!('start' in w)) return [];
      const start = new Date(`${w.start}Z`);
      const end = new Date(`${w.end}Z`);
      return at >= start && at < end ? [{ name: w.name, ...(w.reason ? { reason: w.reason } : {}), end }] : [];
    });
  },
});

export class ScriptedVerifier implements ProvenanceVerifier {
  readonly refused = new Map<string, RefusalCode>();
  readonly asked: string[] = [];
  async verify(request: { digest: string }) {
    this.asked.push(request.digest);
    const code = this.refused.get(request.digest);
    if (code) return { ok: false as const, code, message: `${request.digest}: ${code} (scripted)` };
    return {
      ok: true as const,
      provenance: {
        digest: request.digest,
        builderId: 'https://slipway.dev/builder/v1',
        sourceRepo: 'https://example.test/web',
        sourceRef: 'refs/heads/main',
        sourceCommit: 'f'.repeat(40),
        keyName: 'ci',
      },
    };
  }
}

export class ScriptedAnalysis implements AnalysisProvider {
  readonly outcomes: Outcome[] = [];
  readonly windows: { start: Date; end: Date; label?: string; switchedAt?: Date }[] = [];
  async analyze(ctx: { start: Date; end: Date; label?: string; switchedAt?: Date }) {
    this.windows.push({ start: ctx.start, end: ctx.end, ...(ctx.label ? { label: ctx.label } : {}), ...(ctx.switchedAt ? { switchedAt: ctx.switchedAt } : {}) });
    const outcome = this.outcomes.shift() ?? 'pass';
    return { outcome, summary: `error rate ${outcome === 'fail' ? '12%' : '0.1%'} (scripted ${outcome})`, slos: [], at: ctx.end.toISOString() };
  }
}

export class Harness {
  readonly stateDir = mkdtempSync(join(tmpdir(), 'slipway-state-'));
  readonly target = new MemoryTarget();
  readonly verifier = new ScriptedVerifier();
  readonly analysis = new ScriptedAnalysis();
  readonly audit = new FileAuditLog(join(this.stateDir, 'audit.jsonl'));
  readonly revert: GitCliRevert;
  now = new Date('2026-11-23T10:00:00.000Z');
  readonly reconciler: Reconciler;
  readonly lines: string[] = [];

  constructor(
    readonly repo: EnvRepo,
    options: { freeze?: FreezeCalendar } = {},
  ) {
    this.revert = new GitCliRevert(repo.dir);
    this.reconciler = this.make(options.freeze);
  }

  static create(services: Record<string, ServiceOptions>, environments?: string[]): Harness {
    return new Harness(EnvRepo.create({ services, ...(environments ? { environments } : {}) }));
  }

  /** A fresh reconciler on the same state dir: what a restarted controller process sees. */
  make(freeze: FreezeCalendar = utcFixedWindows, source: EnvironmentSource = new GitEnvironmentSource({ location: this.repo.dir })): Reconciler {
    return new Reconciler({
      store: new StateStore(this.stateDir),
      ports: {
        source,
        targetFor: () => this.target,
        verifier: this.verifier,
        freeze,
        analysis: this.analysis,
        rollback: this.revert,
        audit: this.audit,
        clock: { now: () => this.now },
      },
      log: (l) => this.lines.push(l),
    });
  }

  tick(ms: number): void {
    this.now = new Date(this.now.getTime() + ms);
  }

  cleanup(): void {
    this.repo.cleanup();
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}
