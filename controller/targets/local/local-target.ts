import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { errorMessage, SlipwayError } from '../../../lib/errors.js';
import { slipwayHome } from '../../../lib/home.js';
import type { ImageStore } from '../../../lib/oci/types.js';
import { ProxyMetrics, ProxyRequestLog, ServiceProxy, type RequestLogLimits } from '../../proxy/index.js';
import type { ServiceObservation, ServiceRef, Target, Track, TrackSpec } from '../types.js';
import { DEFAULT_RESTART_POLICY, type RestartPolicy } from './backoff.js';
import { systemClock, type Clock } from './clock.js';
import { ImageCache, processCommand, type ProcessCommand } from './image-cache.js';
import { reapOrphans, RunState, type ReapedOrphan } from './run-state.js';
import { DEFAULT_HEALTH_POLICY, TrackGroup, type HealthPolicy, type InstanceState } from './supervisor.js';

export interface LocalTargetOptions {
  /** SLIPWAY_HOME: the target keeps its unpacked images, instance logs and pid records under `<home>/local`. Default `slipwayHome()`. */
  home?: string;
  /** Time source for backoff, stable uptime, startup and readiness deadlines, and request-log timestamps. */
  clock?: Clock;
  /** Address the proxies and instances bind. Default 127.0.0.1. */
  host?: string;
  /** Opens the image store a TrackSpec names (`oci:<dir>` or `host:port/name`). */
  openStore: (repository: string) => ImageStore | Promise<ImageStore>;
  restart?: Partial<RestartPolicy>;
  health?: Partial<HealthPolicy>;
  /** How long ensureTrack waits for every instance to be healthy before the track is failed. Default 120 s. */
  readyDeadlineMs?: number;
  /** SIGTERM → SIGKILL grace when stopping an instance. Default 5 s. */
  stopGraceMs?: number;
  /** Unpacked images kept on disk that no process uses, most recently started first. Default 3. */
  keepUnusedImages?: number;
  /** How long an instance taken out of rotation may finish the requests it is answering before it is stopped. Default 10 s. */
  drainTimeoutMs?: number;
  requestLog?: Partial<RequestLogLimits>;
  /** Registry for the proxy series; a fresh one by default (never prom-client's global registry). */
  registry?: Registry;
  /** Environment every instance inherits from the controller. Default: PATH, HOME, LANG, TZ, TMPDIR. */
  baseEnv?: Record<string, string>;
}

export interface InstanceDescription {
  id: string;
  state: InstanceState;
  pid?: number;
  port: number;
  restarts: number;
  lastExit?: string;
  logs: { out: string; err: string };
}

export interface LocalTarget extends Target {
  readonly type: 'local';
  /** Per-request samples of every proxy (the `builtin` metrics provider reads this). */
  readonly requestLog: ProxyRequestLog;
  /** The proxy series (PROXY_METRICS), for the controller's /metrics or a dedicated scrape endpoint. */
  readonly metricsRegistry: Registry;
  /** Instances of a previous, crashed run that were killed when this target started. */
  readonly reapedOrphans: ReapedOrphan[];
  /** Per-instance detail (pid, port, state, restarts, last exit, log files), for status pages and debugging. */
  instances(ref: ServiceRef, track: Track): InstanceDescription[];
}

interface TrackSlot {
  active?: TrackGroup;
  activeSpec?: TrackSpec;
  /** A replacement starting up; it becomes active once ready. */
  pending?: TrackGroup;
  pendingSpec?: TrackSpec;
  pendingReady?: Promise<void>;
}

interface ServiceEntry {
  ref: ServiceRef;
  proxy?: ServiceProxy;
  starting?: Promise<ServiceProxy>;
  canaryWeight: number;
  tracks: Record<Track, TrackSlot>;
  /** Serialises changes to this service, so concurrent calls never interleave half-applied. */
  queue: Promise<unknown>;
}

function key(ref: ServiceRef): string {
  return `${ref.environment}/${ref.service}`;
}

function defaultBaseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

function sameRuntime(a: TrackSpec | undefined, b: TrackSpec): boolean {
  if (!a) return false;
  return (
    a.digest === b.digest &&
    a.repository === b.repository &&
    a.healthPath === b.healthPath &&
    a.port === b.port &&
    JSON.stringify(Object.entries(a.env).sort()) === JSON.stringify(Object.entries(b.env).sort())
  );
}

function validateSpec(ref: ServiceRef, track: Track, spec: TrackSpec): void {
  const where = `${key(ref)} ${track}`;
  const bad = (field: string, message: string) =>
    new SlipwayError('INVALID_TRACK_SPEC', `${where}: spec.${field} ${message}`, 'stalling', { field });
  if (!/^sha256:[a-f0-9]{64}$/.test(spec.digest)) throw bad('digest', `must be a full sha256 digest, got ${JSON.stringify(spec.digest)}`);
  if (!Number.isInteger(spec.replicas) || spec.replicas < 0) throw bad('replicas', `must be a whole number >= 0, got ${spec.replicas}`);
  if (!spec.healthPath.startsWith('/')) throw bad('healthPath', `must start with "/", got ${JSON.stringify(spec.healthPath)}`);
  if (spec.proxyPort !== undefined && (!Number.isInteger(spec.proxyPort) || spec.proxyPort < 1 || spec.proxyPort > 65535)) {
    throw bad('proxyPort', `must be a port from 1 to 65535, got ${spec.proxyPort}`);
  }
}

/**
 * The embedded target: each track of a service is a set of processes started from the unpacked image, behind
 * one weighted reverse proxy per (environment, service).
 */
export function createLocalTarget(options: LocalTargetOptions): LocalTarget {
  const home = options.home ?? slipwayHome();
  const clock = options.clock ?? systemClock;
  const host = options.host ?? '127.0.0.1';
  const restart = { ...DEFAULT_RESTART_POLICY, ...options.restart };
  const health = { ...DEFAULT_HEALTH_POLICY, ...options.health };
  const readyDeadlineMs = options.readyDeadlineMs ?? 120_000;
  const stopGraceMs = options.stopGraceMs ?? 5_000;
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  const keepUnusedImages = options.keepUnusedImages ?? 3;
  const baseEnv = options.baseEnv ?? defaultBaseEnv();
  const localDir = join(home, 'local');
  const runDir = join(localDir, 'run');
  const reapedOrphans = reapOrphans(runDir);
  const runState = new RunState(runDir);
  // Not <home>/images: that is the builder's default OCI layout store.
  const images = new ImageCache(join(localDir, 'images'));
  void images.sweep();
  const metrics = new ProxyMetrics(options.registry);
  const requestLog = new ProxyRequestLog(options.requestLog);
  const services = new Map<string, ServiceEntry>();
  let closed = false;

  function entryOf(ref: ServiceRef): ServiceEntry {
    let entry = services.get(key(ref));
    if (!entry) {
      entry = { ref: { environment: ref.environment, service: ref.service }, canaryWeight: 0, tracks: { stable: {}, canary: {} }, queue: Promise.resolve() };
      services.set(key(ref), entry);
    }
    return entry;
  }

  function serialized<T>(entry: ServiceEntry, work: () => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new SlipwayError('TARGET_CLOSED', 'the local target is closed', 'generic'));
    const run = entry.queue.then(work, work);
    entry.queue = run.catch(() => undefined);
    return run;
  }

  function refreshRoutes(entry: ServiceEntry): void {
    if (!entry.proxy) return;
    entry.proxy.setUpstreams('stable', entry.tracks.stable.active?.healthy() ?? []);
    entry.proxy.setUpstreams('canary', entry.tracks.canary.active?.healthy() ?? []);
  }

  async function ensureProxy(entry: ServiceEntry, proxyPort: number | undefined): Promise<ServiceProxy> {
    const current = entry.proxy;
    if (current && (proxyPort === undefined || current.port === proxyPort)) return current;
    const proxy = await ServiceProxy.start({
      environment: entry.ref.environment,
      service: entry.ref.service,
      ...(proxyPort !== undefined ? { port: proxyPort } : {}),
      host,
      metrics,
      requestLog,
      now: () => clock.now(),
      onUpstreamError: (upstream) => {
        for (const slot of Object.values(entry.tracks)) {
          slot.active?.recheck(upstream.id);
        }
      },
    });
    proxy.setWeight(entry.canaryWeight);
    entry.proxy = proxy;
    refreshRoutes(entry);
    if (current) await current.close(drainTimeoutMs);
    return proxy;
  }

  async function startGroup(entry: ServiceEntry, track: Track, spec: TrackSpec): Promise<TrackGroup> {
    const store = await options.openStore(spec.repository);
    const { image, release } = await images.acquire(store, spec.digest);
    let command: ProcessCommand;
    try {
      command = processCommand(image);
    } catch (err) {
      release();
      throw err;
    }
    const group: TrackGroup = new TrackGroup({
      name: key(entry.ref),
      track,
      digest: spec.digest,
      replicas: spec.replicas,
      healthPath: spec.healthPath,
      command,
      env: { ...baseEnv, ...command.env, ...spec.env, SLIPWAY_TRACK: track, SLIPWAY_DIGEST: spec.digest },
      host,
      logDir: join(localDir, 'logs', entry.ref.environment, entry.ref.service),
      clock,
      restart,
      health,
      stopGraceMs,
      runState,
      onChange: () => {
        if (entry.tracks.stable.active === group || entry.tracks.canary.active === group) refreshRoutes(entry);
      },
      onStopped: () => {
        release();
        schedulePrune();
      },
      drain: (instanceIds) => entry.proxy?.drain(instanceIds, drainTimeoutMs) ?? Promise.resolve(true),
    });
    try {
      await group.scale(spec.replicas);
    } catch (err) {
      await group.stop();
      throw err;
    }
    return group;
  }

  let pruning: Promise<unknown> = Promise.resolve();
  /** After a version stops, unpacked images nothing runs go, but for the few most recent (fast rollbacks). */
  function schedulePrune(): void {
    pruning = pruning.then(() => images.prune(keepUnusedImages)).catch(() => undefined);
  }

  async function ensureTrackNow(entry: ServiceEntry, track: Track, spec: TrackSpec): Promise<void> {
    const slot = entry.tracks[track];
    await ensureProxy(entry, spec.proxyPort);
    if (sameRuntime(slot.activeSpec, spec) && slot.active) {
      if (slot.pending) {
        const stale = slot.pending;
        slot.pending = slot.pendingSpec = slot.pendingReady = undefined;
        await stale.stop('superseded');
      }
      if (slot.active.replicas !== spec.replicas) await slot.active.scale(spec.replicas);
      slot.activeSpec = spec;
      await slot.active.waitReady(readyDeadlineMs);
      return;
    }
    if (!(sameRuntime(slot.pendingSpec, spec) && slot.pending)) {
      if (slot.pending) {
        const stale = slot.pending;
        slot.pending = slot.pendingSpec = slot.pendingReady = undefined;
        await stale.stop('superseded');
      }
      const group = await startGroup(entry, track, spec);
      slot.pending = group;
      slot.pendingSpec = spec;
      slot.pendingReady = group.waitReady(readyDeadlineMs);
    } else if (slot.pending.replicas !== spec.replicas) {
      await slot.pending.scale(spec.replicas);
      slot.pendingSpec = spec;
    }
    const group = slot.pending!;
    await slot.pendingReady;
    // Ready: it takes the track's traffic in one step, then the previous version goes.
    const previous = slot.active;
    slot.active = group;
    slot.activeSpec = slot.pendingSpec;
    slot.pending = slot.pendingSpec = slot.pendingReady = undefined;
    refreshRoutes(entry);
    await retire(entry, [previous], 'superseded');
  }

  /** A version still starting is stopped now, so the ensureTrack waiting on it gives way instead of blocking the queue. */
  function abortPending(entry: ServiceEntry, track: Track): void {
    const slot = entry.tracks[track];
    if (slot.pending) {
      if (track === 'canary') {
        entry.canaryWeight = 0;
        entry.proxy?.setWeight(0);
      }
      void slot.pending.stop('removed');
    }
  }

  /** Stops groups already out of the routes, once their in-flight requests are answered (or the drain times out). */
  async function retire(entry: ServiceEntry, groups: (TrackGroup | undefined)[], reason: 'removed' | 'superseded' = 'removed'): Promise<void> {
    const present = groups.filter((g): g is TrackGroup => g !== undefined);
    if (present.length === 0) return;
    if (entry.proxy) await entry.proxy.drain(present.flatMap((g) => g.upstreamIds()), drainTimeoutMs);
    await Promise.all(present.map((g) => g.stop(reason)));
  }

  async function removeSlot(entry: ServiceEntry, track: Track): Promise<void> {
    const slot = entry.tracks[track];
    const groups = [slot.active, slot.pending].filter((g): g is TrackGroup => g !== undefined);
    entry.tracks[track] = {};
    if (track === 'canary' && entry.canaryWeight !== 0) {
      entry.canaryWeight = 0;
      entry.proxy?.setWeight(0);
    }
    refreshRoutes(entry);
    await retire(entry, groups);
  }

  const target: LocalTarget = {
    type: 'local',
    requestLog,
    metricsRegistry: metrics.registry,
    reapedOrphans,

    async ensureTrack(ref, track, spec) {
      validateSpec(ref, track, spec);
      const entry = entryOf(ref);
      // A different version waiting to become ready is superseded at once, not after its readiness deadline.
      const slot = entry.tracks[track];
      if (slot.pending && !sameRuntime(slot.pendingSpec, spec)) void slot.pending.stop('superseded');
      return serialized(entry, () => ensureTrackNow(entry, track, spec));
    },

    async setWeight(ref, canaryWeight) {
      if (!Number.isInteger(canaryWeight) || canaryWeight < 0 || canaryWeight > 100) {
        throw new SlipwayError('INVALID_WEIGHT', `${key(ref)}: canary weight must be a whole number from 0 to 100, got ${canaryWeight}`, 'stalling', {
          canaryWeight,
        });
      }
      if (closed) throw new SlipwayError('TARGET_CLOSED', 'the local target is closed', 'generic');
      // Not queued behind a slow ensureTrack: this is the rollback path, and it must be instant.
      const entry = entryOf(ref);
      entry.canaryWeight = canaryWeight;
      entry.proxy?.setWeight(canaryWeight);
    },

    promote(ref) {
      const entry = entryOf(ref);
      return serialized(entry, async () => {
        const canary = entry.tracks.canary;
        if (!canary.active) {
          if (canary.pending) {
            throw new SlipwayError('CANARY_NOT_READY', `${key(ref)}: the canary ${canary.pendingSpec?.digest} is not ready yet; cannot promote it`, 'waiting');
          }
          if (entry.tracks.stable.active) return; // already promoted
          throw new SlipwayError('NOTHING_TO_PROMOTE', `${key(ref)} has no canary track to promote`, 'stalling');
        }
        const oldStable = entry.tracks.stable;
        const promoted = canary.active;
        promoted.track = 'stable';
        entry.tracks.stable = { active: promoted, ...(canary.activeSpec ? { activeSpec: canary.activeSpec } : {}) };
        entry.tracks.canary = {};
        entry.canaryWeight = 0;
        if (entry.proxy) {
          entry.proxy.setRoutes({ stable: promoted.healthy(), canary: [], canaryWeight: 0 });
        }
        await retire(entry, [oldStable.active, oldStable.pending, canary.pending], 'superseded');
      });
    },

    async removeTrack(ref, track) {
      const entry = services.get(key(ref));
      if (!entry) return;
      abortPending(entry, track);
      return serialized(entry, () => removeSlot(entry, track));
    },

    async removeService(ref) {
      const entry = services.get(key(ref));
      if (!entry) return;
      abortPending(entry, 'stable');
      abortPending(entry, 'canary');
      return serialized(entry, async () => {
        await removeSlot(entry, 'canary');
        await removeSlot(entry, 'stable');
        services.delete(key(ref));
        await entry.proxy?.close(drainTimeoutMs);
        await metrics.forget(ref.environment, ref.service);
        requestLog.forget(ref);
      });
    },

    async observe(ref) {
      const entry = services.get(key(ref));
      const observation: ServiceObservation = { canaryWeight: entry?.canaryWeight ?? 0 };
      if (!entry) return observation;
      for (const track of ['stable', 'canary'] as const) {
        const slot = entry.tracks[track];
        const group = slot.pending ?? slot.active;
        if (group) observation[track] = group.status();
      }
      if (entry.proxy) observation.endpoint = entry.proxy.endpoint;
      return observation;
    },

    instances(ref, track) {
      const slot = services.get(key(ref))?.tracks[track];
      const group = slot?.pending ?? slot?.active;
      return group ? group.describe() : [];
    },

    async close() {
      if (closed) return;
      closed = true;
      const all = [...services.values()];
      services.clear();
      const stops: Promise<unknown>[] = [];
      for (const entry of all) {
        for (const slot of Object.values(entry.tracks)) {
          for (const group of [slot.active, slot.pending]) if (group) stops.push(group.stop());
        }
        if (entry.proxy) stops.push(entry.proxy.close());
      }
      const results = await Promise.allSettled(stops);
      await pruning;
      runState.dispose();
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) throw new SlipwayError('TARGET_CLOSE_FAILED', `closing the local target: ${errorMessage(failure.reason)}`, 'generic');
    },
  };
  return target;
}
