/**
 * An in-memory Target that keeps the port's promises honestly: tracks are created and replaced
 * idempotently, weights route traffic only to a track that exists, promote swaps canary into stable.
 * Instances become ready when the test says so (or at once), and a digest can be made to crash.
 * Every call is logged so tests can count traffic shifts.
 */
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { ServiceObservation, ServiceRef, Target, Track, TrackSpec, TrackStatus } from '../../controller/targets/types.js';

export interface MemoryTargetOptions {
  /** Instances of these digests crash (failed status) instead of becoming ready. */
  crashing?: Set<string>;
  /** When false, tracks stay unready until `markReady` is called. */
  readyAtOnce?: boolean;
  /**
   * Keep the target's state in this file (and every call in `<file>.calls.jsonl`), so it outlives a
   * controller process: what a real target's running instances do when the controller is killed.
   */
  file?: string;
  /** Before applying a call that matches, write `<file>.hung` and never return (the test kills us then). */
  hangBefore?: (call: TargetCall) => boolean;
  /** After applying a call that matches, write `<file>.hung` and never return. */
  hangAfter?: (call: TargetCall) => boolean;
}

interface TrackRecord {
  spec: TrackSpec;
  status: TrackStatus;
}

interface ServiceSlot {
  stable?: TrackRecord;
  canary?: TrackRecord;
  canaryWeight: number;
}

export type TargetCall =
  | { op: 'ensureTrack'; ref: string; track: Track; digest: string }
  | { op: 'setWeight'; ref: string; weight: number }
  | { op: 'promote'; ref: string }
  | { op: 'removeTrack'; ref: string; track: Track }
  | { op: 'removeService'; ref: string };

export class MemoryTarget implements Target {
  readonly type = 'local' as const;
  readonly calls: TargetCall[] = [];
  private readonly services = new Map<string, ServiceSlot>();
  crashing: Set<string>;
  readyAtOnce: boolean;

  private readonly file?: string;

  constructor(private readonly options: MemoryTargetOptions = {}) {
    this.crashing = options.crashing ?? new Set();
    this.readyAtOnce = options.readyAtOnce ?? true;
    this.file = options.file;
    if (this.file && existsSync(this.file)) {
      const saved = JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, ServiceSlot>;
      for (const [k, v] of Object.entries(saved)) this.services.set(k, v);
    }
  }

  /** Effective traffic shifts (the weight actually changed), across every process that used the file. */
  static shifts(file: string, ref: string): number[] {
    if (!existsSync(`${file}.calls.jsonl`)) return [];
    return readFileSync(`${file}.calls.jsonl`, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as TargetCall & { shifted?: boolean })
      .flatMap((c) => (c.op === 'setWeight' && c.ref === ref && c.shifted ? [c.weight] : []));
  }

  static callsIn(file: string): (TargetCall & { shifted?: boolean })[] {
    if (!existsSync(`${file}.calls.jsonl`)) return [];
    return readFileSync(`${file}.calls.jsonl`, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as TargetCall & { shifted?: boolean });
  }

  private async record(call: TargetCall, apply: () => boolean | void): Promise<void> {
    if (this.options.hangBefore?.(call)) await this.hang(call);
    const shifted = apply();
    this.calls.push(call);
    if (this.file) {
      writeFileSync(`${this.file}.tmp`, JSON.stringify(Object.fromEntries(this.services)));
      renameSync(`${this.file}.tmp`, this.file);
      appendFileSync(`${this.file}.calls.jsonl`, `${JSON.stringify({ ...call, ...(shifted === true ? { shifted } : {}) })}\n`);
    }
    if (this.options.hangAfter?.(call)) await this.hang(call);
  }

  private hang(call: TargetCall): Promise<never> {
    if (this.file) writeFileSync(`${this.file}.hung`, JSON.stringify(call));
    return new Promise<never>(() => undefined);
  }

  private slot(ref: ServiceRef): ServiceSlot {
    const k = `${ref.environment}/${ref.service}`;
    let s = this.services.get(k);
    if (!s) {
      s = { canaryWeight: 0 };
      this.services.set(k, s);
    }
    return s;
  }

  async ensureTrack(ref: ServiceRef, track: Track, spec: TrackSpec): Promise<void> {
    await this.record({ op: 'ensureTrack', ref: `${ref.environment}/${ref.service}`, track, digest: spec.digest }, () => {
    const s = this.slot(ref);
    const existing = s[track];
    if (existing && JSON.stringify(existing.spec) === JSON.stringify(spec)) return;
    const crashing = this.crashing.has(spec.digest);
    s[track] = {
      spec,
      status: {
        digest: spec.digest,
        replicas: spec.replicas,
        readyReplicas: crashing || !this.readyAtOnce ? 0 : spec.replicas,
        ...(crashing ? { failed: 'exited with code 1 five times in a row' } : {}),
      },
    };
    });
  }

  markReady(ref: ServiceRef, track: Track): void {
    const t = this.slot(ref)[track];
    if (t) t.status.readyReplicas = t.spec.replicas;
  }

  /** Where the canary/stable split stands. */
  weightOf(ref: ServiceRef): number {
    return this.slot(ref).canaryWeight;
  }

  async setWeight(ref: ServiceRef, canaryWeight: number): Promise<void> {
    const s = this.slot(ref);
    if (canaryWeight > 0 && !s.canary) throw new Error(`no canary track for ${ref.environment}/${ref.service}: cannot send it ${canaryWeight}%`);
    await this.record({ op: 'setWeight', ref: `${ref.environment}/${ref.service}`, weight: canaryWeight }, () => {
      const shifted = s.canaryWeight !== canaryWeight;
      s.canaryWeight = canaryWeight;
      return shifted;
    });
  }

  async promote(ref: ServiceRef): Promise<void> {
    const s = this.slot(ref);
    await this.record({ op: 'promote', ref: `${ref.environment}/${ref.service}` }, () => {
      if (!s.canary) return; // already promoted: idempotent
      s.stable = s.canary;
      delete s.canary;
      s.canaryWeight = 0;
    });
  }

  async removeTrack(ref: ServiceRef, track: Track): Promise<void> {
    const s = this.slot(ref);
    await this.record({ op: 'removeTrack', ref: `${ref.environment}/${ref.service}`, track }, () => {
      delete s[track];
      if (track === 'canary') s.canaryWeight = 0;
    });
  }

  async removeService(ref: ServiceRef): Promise<void> {
    await this.record({ op: 'removeService', ref: `${ref.environment}/${ref.service}` }, () => {
      this.services.delete(`${ref.environment}/${ref.service}`);
    });
  }

  async observe(ref: ServiceRef): Promise<ServiceObservation> {
    const s = this.slot(ref);
    return {
      ...(s.stable ? { stable: { ...s.stable.status } } : {}),
      ...(s.canary ? { canary: { ...s.canary.status } } : {}),
      canaryWeight: s.canaryWeight,
      endpoint: `memory://${ref.environment}/${ref.service}`,
    };
  }

  weights(ref: string): number[] {
    return this.calls.flatMap((c) => (c.op === 'setWeight' && c.ref === ref ? [c.weight] : []));
  }

  async close(): Promise<void> {
    this.services.clear();
  }
}
