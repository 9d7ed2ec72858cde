import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, closeSync, mkdirSync, openSync, readSync, renameSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { SlipwayError } from '../../../lib/errors.js';
import type { Upstream } from '../../proxy/index.js';
import type { Track, TrackStatus } from '../types.js';
import { decideRestart, type RestartPolicy } from './backoff.js';
import type { Clock } from './clock.js';
import type { ProcessCommand } from './image-cache.js';
import { freePort } from './ports.js';
import { INSTANCE_ID_ENV, killGroup, type RunState } from './run-state.js';

export interface HealthPolicy {
  /** Probe cadence while an instance starts. */
  startupProbeMs: number;
  /** Probe cadence once it is in rotation. */
  probeIntervalMs: number;
  probeTimeoutMs: number;
  /** Consecutive failed probes that take a healthy instance out of rotation. */
  failureThreshold: number;
  /** An instance not healthy this long after its start is killed and counts as a crash. */
  startupTimeoutMs: number;
}

export const DEFAULT_HEALTH_POLICY: HealthPolicy = {
  startupProbeMs: 100,
  probeIntervalMs: 2_000,
  probeTimeoutMs: 2_000,
  failureThreshold: 3,
  startupTimeoutMs: 60_000,
};

export type InstanceState = 'starting' | 'healthy' | 'unhealthy' | 'backoff' | 'stopped';

export interface GroupOptions {
  /** `<environment>/<service>`, for names and messages. */
  name: string;
  track: Track;
  digest: string;
  replicas: number;
  healthPath: string;
  command: ProcessCommand;
  /** The final environment of every instance, PORT excepted. */
  env: Record<string, string>;
  host: string;
  logDir: string;
  clock: Clock;
  restart: RestartPolicy;
  health: HealthPolicy;
  /** Graceful stop: SIGTERM, then SIGKILL after this long. */
  stopGraceMs: number;
  runState: RunState;
  /** Called whenever the set of healthy instances or the group's status changes. */
  onChange: () => void;
  /** Called once, when the group has stopped for good. */
  onStopped?: () => void;
  /** Waits until no request is under way on these instances (already out of rotation), before they are stopped. */
  drain?: (instanceIds: string[]) => Promise<unknown>;
}

const STDERR_TAIL_LINES = 10;
const STDERR_TAIL_BYTES = 8192;

/** One replica: a process group, restarted with backoff when it dies, probed before and while it takes traffic. */
class Instance {
  state: InstanceState = 'starting';
  port = 0;
  pid: number | undefined;
  restarts = 0;
  lastExit: string | undefined;
  private child: ChildProcess | undefined;
  private startedAt = 0;
  private consecutiveCrashes = 0;
  private consecutiveProbeFailures = 0;
  private instanceId = '';
  private stderrOffset = 0;
  private cancelRestart: (() => void) | undefined;
  private cancelStartupDeadline: (() => void) | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  private startupTimedOut = false;
  readonly outLog: string;
  readonly errLog: string;

  constructor(
    readonly index: number,
    private readonly group: TrackGroup,
    private readonly options: GroupOptions,
  ) {
    const base = join(options.logDir, `${options.digest.slice(7, 19)}-${index}`);
    this.outLog = `${base}.out.log`;
    this.errLog = `${base}.err.log`;
  }

  /** Unique across groups: two versions of a track (or a promoted canary and the old stable) coexist briefly. */
  get id(): string {
    return `${this.options.name}/${this.group.track}/${this.group.serial}#${this.index}`;
  }

  upstream(): Upstream {
    return { id: this.id, host: this.options.host, port: this.port };
  }

  /** Out of rotation for good (scale-down): no more probes, no restarts; `stop` ends the process later. */
  leaveRotation(): void {
    this.stopping = true;
    this.cancelRestart?.();
    this.cancelStartupDeadline?.();
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.state = 'stopped';
  }

  async start(): Promise<void> {
    if (this.stopping) return;
    this.cancelRestart = undefined;
    this.port = await freePort(this.options.host);
    if (this.stopping) return;
    this.instanceId = randomUUID();
    mkdirSync(this.options.logDir, { recursive: true });
    rotateIfLarge(this.outLog);
    rotateIfLarge(this.errLog);
    const banner = `--- slipway: ${this.id} ${this.options.digest} port ${this.port} at ${new Date(this.options.clock.now()).toISOString()} ---\n`;
    appendFileSync(this.outLog, banner);
    appendFileSync(this.errLog, banner);
    this.stderrOffset = statSync(this.errLog).size;
    const out = openSync(this.outLog, 'a');
    const err = openSync(this.errLog, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.options.command.file, this.options.command.args, {
        cwd: this.options.command.cwd,
        env: { ...this.options.env, PORT: String(this.port), [INSTANCE_ID_ENV]: this.instanceId },
        detached: true,
        stdio: ['ignore', out, err],
      });
    } finally {
      closeSync(out);
      closeSync(err);
    }
    this.child = child;
    this.startedAt = this.options.clock.now();
    this.state = 'starting';
    this.consecutiveProbeFailures = 0;
    this.pid = child.pid;
    if (child.pid !== undefined) this.options.runState.add(this.instanceId, child.pid);
    let settled = false;
    this.exited = new Promise<void>((resolve) => {
      const finish = (reason: string) => {
        if (settled) return;
        settled = true;
        this.onExit(reason);
        resolve();
      };
      child.once('exit', (code, signal) => finish(signal ? `killed by signal ${signal}` : `exited with code ${code}`));
      child.once('error', (error: NodeJS.ErrnoException) =>
        finish(`could not start ${this.options.command.file}: ${error.code ?? error.message}`),
      );
    });
    this.cancelStartupDeadline = this.options.clock.schedule(this.options.health.startupTimeoutMs, () => {
      if (this.child !== child || this.state !== 'starting') return;
      this.startupTimedOut = true;
      killGroup(child.pid!, 'SIGKILL');
    });
    this.scheduleProbe(0);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.cancelRestart?.();
    this.cancelStartupDeadline?.();
    if (this.probeTimer) clearTimeout(this.probeTimer);
    const child = this.child;
    const wasState = this.state;
    this.state = 'stopped';
    if (wasState !== 'stopped') this.group.notify();
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    killGroup(child.pid, 'SIGTERM');
    const force = setTimeout(() => killGroup(child.pid!, 'SIGKILL'), this.options.stopGraceMs);
    await this.exited;
    clearTimeout(force);
    // The leader is gone; anything it left in its group goes too.
    killGroup(child.pid, 'SIGKILL');
  }

  private onExit(reason: string): void {
    this.cancelStartupDeadline?.();
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.options.runState.remove(this.instanceId);
    this.child = undefined;
    this.pid = undefined;
    if (this.stopping) return;
    const stderr = readTail(this.errLog, this.stderrOffset);
    const why = this.startupTimedOut
      ? `not healthy on ${this.options.healthPath} within ${this.options.health.startupTimeoutMs} ms, so killed (${reason})`
      : reason;
    this.startupTimedOut = false;
    this.lastExit = stderr ? `${why}; last stderr:\n${stderr}` : why;
    const uptime = this.options.clock.now() - this.startedAt;
    const decision = decideRestart(this.options.restart, { consecutiveCrashes: this.consecutiveCrashes }, uptime);
    this.consecutiveCrashes = decision.consecutiveCrashes;
    this.state = 'backoff';
    if (decision.crashLoop) {
      this.group.markFailed(
        `instance ${this.id} is crash-looping (${decision.consecutiveCrashes} crashes in a row): ${this.lastExit}`,
      );
    }
    this.group.notify();
    this.cancelRestart = this.options.clock.schedule(decision.delayMs, () => {
      this.restarts++;
      this.start().catch((err: unknown) => {
        this.onExit(`restart failed: ${String(err)}`);
      });
    });
  }

  private scheduleProbe(delayMs: number): void {
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => void this.probe(), delayMs);
    this.probeTimer.unref();
  }

  /** Probe now (the proxy saw a refused connection). */
  recheck(): void {
    if (this.state === 'healthy') this.scheduleProbe(0);
  }

  private async probe(): Promise<void> {
    const child = this.child;
    if (!child || this.stopping) return;
    const ok = await probeHealth(this.options.host, this.port, this.options.healthPath, this.options.health.probeTimeoutMs);
    if (this.child !== child || this.stopping) return;
    const before = this.state;
    if (ok) {
      this.consecutiveProbeFailures = 0;
      if (before === 'starting') this.cancelStartupDeadline?.();
      this.state = 'healthy';
    } else if (before !== 'starting') {
      this.consecutiveProbeFailures++;
      if (this.consecutiveProbeFailures >= this.options.health.failureThreshold) this.state = 'unhealthy';
    }
    if (this.state !== before) this.group.notify();
    this.scheduleProbe(this.state === 'starting' ? this.options.health.startupProbeMs : this.options.health.probeIntervalMs);
  }
}

/** Instance logs past this size move to `<name>.1` (replacing the previous one) when the instance (re)starts. */
export const LOG_ROTATE_BYTES = 10 * 1024 * 1024;

function rotateIfLarge(path: string): void {
  try {
    if (statSync(path).size >= LOG_ROTATE_BYTES) renameSync(path, `${path}.1`);
  } catch {
    // no log yet
  }
}

function readTail(path: string, from: number): string {
  try {
    const size = statSync(path).size;
    const start = Math.max(from, size - STDERR_TAIL_BYTES);
    if (size <= start) return '';
    const buffer = Buffer.alloc(size - start);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, buffer, 0, buffer.length, start);
    } finally {
      closeSync(fd);
    }
    const lines = buffer.toString('utf8').split('\n').filter((line) => line.trim() !== '');
    return lines.slice(-STDERR_TAIL_LINES).join('\n');
  } catch {
    return '';
  }
}

function probeHealth(host: string, port: number, path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** The instances of one digest on one track. */
let groupSerial = 0;

export class TrackGroup {
  track: Track;
  /** Tells this group's instances from those of an earlier or later group of the same track. */
  readonly serial = ++groupSerial;
  readonly digest: string;
  private instances: Instance[] = [];
  private failedReason: string | undefined;
  private readonly waiters = new Set<() => void>();
  private cancelDeadline: (() => void) | undefined;
  private stopped = false;
  private stopReason: 'removed' | 'superseded' = 'removed';

  constructor(readonly options: GroupOptions) {
    this.track = options.track;
    this.digest = options.digest;
  }

  get replicas(): number {
    return this.instances.length;
  }

  get failed(): string | undefined {
    return this.failedReason;
  }

  /** Starts or stops instances until `replicas` run. */
  async scale(replicas: number): Promise<void> {
    if (this.instances.length > replicas) {
      const leaving = this.instances.splice(replicas);
      for (const instance of leaving) instance.leaveRotation();
      this.changed();
      await this.options.drain?.(leaving.map((i) => i.id));
      await Promise.all(leaving.map((i) => i.stop()));
    }
    const starting: Promise<void>[] = [];
    while (this.instances.length < replicas) {
      const instance = new Instance(this.instances.length, this, this.options);
      this.instances.push(instance);
      starting.push(instance.start());
    }
    await Promise.all(starting);
    this.changed();
  }

  /** Ids of every instance, in rotation or not (what a drain waits on). */
  upstreamIds(): string[] {
    return this.instances.map((i) => i.id);
  }

  healthy(): Upstream[] {
    return this.instances.filter((i) => i.state === 'healthy').map((i) => i.upstream());
  }

  status(): TrackStatus {
    const status: TrackStatus = {
      digest: this.digest,
      replicas: this.instances.length,
      readyReplicas: this.healthy().length,
      restarts: this.instances.reduce((sum, i) => sum + i.restarts, 0),
    };
    if (this.failedReason) status.failed = this.failedReason;
    return status;
  }

  describe(): { id: string; state: InstanceState; pid?: number; port: number; restarts: number; lastExit?: string; logs: { out: string; err: string } }[] {
    return this.instances.map((i) => ({
      id: i.id,
      state: i.state,
      ...(i.pid !== undefined ? { pid: i.pid } : {}),
      port: i.port,
      restarts: i.restarts,
      ...(i.lastExit ? { lastExit: i.lastExit } : {}),
      logs: { out: i.outLog, err: i.errLog },
    }));
  }

  markFailed(reason: string): void {
    this.failedReason = reason;
    this.changed();
  }

  recheck(upstreamId: string): void {
    this.instances.find((i) => i.id === upstreamId)?.recheck();
  }

  /**
   * Resolves once every instance is healthy; rejects when the group fails (crash loop) or is not ready within
   * `deadlineMs` on the clock (the group is then marked failed with the reason).
   */
  waitReady(deadlineMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.stopped) {
          this.waiters.delete(check);
          reject(
            new SlipwayError(
              this.stopReason === 'superseded' ? 'TRACK_SUPERSEDED' : 'TRACK_REMOVED',
              `${this.options.name} ${this.track} (${this.digest}) was ${this.stopReason} before it became ready`,
              'generic',
              { digest: this.digest },
            ),
          );
          return;
        }
        if (this.failedReason) {
          this.waiters.delete(check);
          reject(
            new SlipwayError('TRACK_FAILED', `${this.options.name} ${this.track} (${this.digest}) failed: ${this.failedReason}`, 'stalling', {
              digest: this.digest,
              reason: this.failedReason,
            }),
          );
          return;
        }
        const ready = this.healthy().length;
        if (ready >= this.instances.length) {
          this.waiters.delete(check);
          // Nobody waits any more: a deadline left running would later fail a healthy group caught mid-restart.
          if (this.waiters.size === 0) {
            this.cancelDeadline?.();
            this.cancelDeadline = undefined;
          }
          resolve();
        }
      };
      this.waiters.add(check);
      if (!this.cancelDeadline) {
        this.cancelDeadline = this.options.clock.schedule(deadlineMs, () => {
          this.cancelDeadline = undefined;
          if (this.healthy().length >= this.instances.length || this.failedReason || this.stopped) return;
          const lastExit = this.instances.map((i) => i.lastExit).find((e) => e);
          this.markFailed(
            `not ready within ${deadlineMs} ms: ${this.healthy().length}/${this.instances.length} instances healthy` +
              (lastExit ? `; last exit: ${lastExit}` : ''),
          );
        });
      }
      check();
    });
  }

  /** Stops every instance; anyone waiting for readiness is told the group was `reason`. */
  async stop(reason: 'removed' | 'superseded' = 'removed'): Promise<void> {
    const first = !this.stopped;
    if (first) this.stopReason = reason;
    this.stopped = true;
    this.cancelDeadline?.();
    await Promise.all(this.instances.map((i) => i.stop()));
    this.changed();
    if (first) this.options.onStopped?.();
  }

  private changed(): void {
    if (this.failedReason && this.instances.length > 0 && this.instances.every((i) => i.state === 'healthy')) {
      // Recovered (e.g. a dependency came back): healthy everywhere again.
      this.failedReason = undefined;
    }
    for (const waiter of [...this.waiters]) waiter();
    this.options.onChange();
  }

  /** Instances report every state change here, so waiters and the owner both see it. */
  notify(): void {
    this.changed();
  }
}
