/**
 * Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics:
 * - a lease is expired when this replica has seen no change to it for `leaseDuration` (its own clock, so clock
 *   skew between replicas does not matter; the times written in the Lease are informational);
 * - the leader renews every `retryPeriod`; if it cannot renew within `renewDeadline` it stops leading
 *   before anyone else may take over (renewDeadline < leaseDuration);
 * - writes carry the Lease's resourceVersion, so of two replicas racing for an expired lease exactly one wins.
 *
 * The decision (`leaseDecision`) is pure; `LeaderElector.step()` is one attempt against the API server, so
 * tests drive it with a controlled clock. `run()` loops `step()` every retry period for production.
 */
import type { V1MicroTime as MicroTimeClass } from '@kubernetes/client-node';
import type { KubeClient } from '../targets/kubernetes/index.js';

interface KubeParts {
  V1MicroTime: typeof MicroTimeClass;
  isApiStatus: (err: unknown, code: number) => boolean;
}
let kubeParts: Promise<KubeParts> | undefined;
/** client-node is loaded only by a controller that elects (~1 s of start-up that a local-only controller does not need). */
function loadKubeParts(): Promise<KubeParts> {
  return (kubeParts ??= Promise.all([import('@kubernetes/client-node'), import('../targets/kubernetes/client.js')]).then(([node, client]) => ({
    V1MicroTime: node.V1MicroTime,
    isApiStatus: client.isApiStatus,
  })));
}

export interface Clock {
  now(): Date;
}

export const DEFAULT_LEASE_TIMING = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 } as const;

export interface LeaseTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface LeaseObject {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string; uid?: string; labels?: Record<string, string> };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string | Date;
    renewTime?: string | Date;
    leaseTransitions?: number;
  };
}

/**
 * A fencing token: which Lease (name and uid, so a deleted and re-created Lease starts a new series) and its
 * transition count when this replica became or stayed the holder. A later holder always has a higher count.
 */
export interface FencingToken {
  lease: string;
  uid: string;
  transitions: number;
}

/** Whether `theirs` was issued after `ours` by the same Lease (so the writer holding `ours` is stale). */
export function supersedes(theirs: FencingToken | undefined, ours: FencingToken): boolean {
  return !!theirs && theirs.lease === ours.lease && theirs.uid === ours.uid && theirs.transitions > ours.transitions;
}

/** What this replica last saw of the lease, and when (by its own clock). */
export interface Observation {
  key: string;
  at: number;
}

export type LeaseAction =
  | { kind: 'create' }
  | { kind: 'renew' }
  | { kind: 'acquire'; transitions: number }
  | { kind: 'follow'; holder: string; expiresAt: number };

/** A key that changes whenever the holder writes the lease. */
export function observationKey(lease: LeaseObject): string {
  return `${lease.spec.holderIdentity ?? ''}|${String(lease.spec.renewTime ?? '')}|${lease.metadata.resourceVersion ?? ''}`;
}

export function leaseDecision(lease: LeaseObject | undefined, observed: Observation | undefined, identity: string, now: number, leaseDurationMs: number): LeaseAction {
  if (!lease) return { kind: 'create' };
  const holder = lease.spec.holderIdentity ?? '';
  const transitions = lease.spec.leaseTransitions ?? 0;
  if (holder === identity) return { kind: 'renew' };
  if (holder === '') return { kind: 'acquire', transitions: transitions + 1 };
  const key = observationKey(lease);
  const seenAt = observed && observed.key === key ? observed.at : now;
  const duration = (lease.spec.leaseDurationSeconds ?? leaseDurationMs / 1000) * 1000;
  const expiresAt = seenAt + duration;
  if (now < expiresAt) return { kind: 'follow', holder, expiresAt };
  return { kind: 'acquire', transitions: transitions + 1 };
}

export interface LeaderElectorOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  clock: Clock;
  timing?: Partial<LeaseTiming>;
  labels?: Record<string, string>;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
  onNewLeader?: (identity: string) => void;
  /** Errors of single attempts (retried on the next step); never thrown from step(). */
  onError?: (err: unknown) => void;
}

export interface LeaderElector {
  readonly identity: string;
  readonly name: string;
  isLeader(): boolean;
  /** The holder this replica last saw (itself when leading). */
  leader(): string | undefined;
  /** When this replica (by its clock) would consider the current holder's lease expired; undefined when none is held. */
  expiresAt(): number | undefined;
  /** One acquire-or-renew attempt. Returns whether this replica leads afterwards. */
  step(): Promise<boolean>;
  /**
   * Stop leading, without a round trip, when the last successful renewal is older than the renew deadline (an
   * attempt that hangs never returns an error to step()). Returns whether this replica still leads.
   */
  enforceRenewDeadline(): boolean;
  readonly timing: LeaseTiming;
  /** The token of the term this replica leads (undefined when not leading). */
  fencingToken(): FencingToken | undefined;
  /** Read the lease and update what this replica knows, without trying to take it. */
  observe(): Promise<void>;
  /** Give the lease up (holder cleared) so another replica takes over at once. */
  release(): Promise<void>;
  /** Step every retry period until the signal aborts, then release. */
  run(signal: AbortSignal): Promise<void>;
}

export function createLeaderElector(options: LeaderElectorOptions): LeaderElector {
  const timing: LeaseTiming = { ...DEFAULT_LEASE_TIMING, ...options.timing };
  if (!(timing.renewDeadlineMs < timing.leaseDurationMs)) {
    throw new Error(`renew deadline (${timing.renewDeadlineMs} ms) must be shorter than the lease duration (${timing.leaseDurationMs} ms)`);
  }
  const { client, namespace, name, identity, clock } = options;
  const ref = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name, namespace };
  let leading = false;
  let lastRenewAt: number | undefined;
  let observed: Observation | undefined;
  let currentLeader: string | undefined;
  let expiry: number | undefined;

  function setLeader(holder: string | undefined): void {
    if (holder !== currentLeader) {
      currentLeader = holder;
      if (holder) options.onNewLeader?.(holder);
    }
  }
  let token: FencingToken | undefined;
  function startLeading(now: number, written: LeaseObject): void {
    token = { lease: name, uid: written.metadata.uid ?? '', transitions: written.spec.leaseTransitions ?? 0 };
    lastRenewAt = now;
    expiry = now + timing.leaseDurationMs;
    setLeader(identity);
    if (!leading) {
      leading = true;
      options.onStartedLeading?.();
    }
  }
  function stopLeading(): void {
    token = undefined;
    if (leading) {
      leading = false;
      options.onStoppedLeading?.();
    }
  }

  function leaseBody(V1MicroTime: typeof MicroTimeClass, now: Date, spec: Partial<LeaseObject['spec']>, resourceVersion?: string): LeaseObject {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name, namespace, ...(resourceVersion ? { resourceVersion } : {}), ...(options.labels ? { labels: options.labels } : {}) },
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: Math.round(timing.leaseDurationMs / 1000),
        renewTime: new V1MicroTime(now.getTime()),
        ...spec,
      },
    };
  }

  async function attempt(): Promise<boolean> {
    const { V1MicroTime, isApiStatus } = await loadKubeParts();
    const nowDate = clock.now();
    const now = nowDate.getTime();
    const lease = (await client.get(ref)) as LeaseObject | undefined;
    const action = leaseDecision(lease, observed, identity, now, timing.leaseDurationMs);
    if (lease) observed = { key: observationKey(lease), at: observed?.key === observationKey(lease) ? observed.at : now };
    let written: LeaseObject;
    try {
      switch (action.kind) {
        case 'create':
          written = await client.create(leaseBody(V1MicroTime, nowDate, { acquireTime: new V1MicroTime(now), leaseTransitions: 0 }) as never);
          break;
        case 'renew':
          written = await client.replace(
            leaseBody(V1MicroTime, nowDate, { acquireTime: lease!.spec.acquireTime, leaseTransitions: lease!.spec.leaseTransitions ?? 0 }, lease!.metadata.resourceVersion) as never,
          );
          break;
        case 'acquire':
          written = await client.replace(leaseBody(V1MicroTime, nowDate, { acquireTime: new V1MicroTime(now), leaseTransitions: action.transitions }, lease!.metadata.resourceVersion) as never);
          break;
        case 'follow':
          stopLeading();
          setLeader(action.holder);
          expiry = action.expiresAt;
          return false;
      }
    } catch (err) {
      // Another replica wrote first (409 on a stale resourceVersion, or 409 AlreadyExists on create): it leads.
      if (isApiStatus(err, 409)) {
        observed = undefined;
        stopLeading();
        return false;
      }
      throw err;
    }
    startLeading(now, written);
    return true;
  }

  const elector: LeaderElector = {
    identity,
    name,
    timing,
    fencingToken: () => (leading ? token : undefined),
    enforceRenewDeadline() {
      if (leading && lastRenewAt !== undefined && clock.now().getTime() - lastRenewAt >= timing.renewDeadlineMs) stopLeading();
      return leading;
    },
    isLeader: () => leading,
    leader: () => currentLeader,
    expiresAt: () => expiry,
    async step() {
      try {
        return await attempt();
      } catch (err) {
        options.onError?.(err);
        // A leader that cannot renew within the deadline stops acting before its lease can expire for others.
        if (leading && lastRenewAt !== undefined && clock.now().getTime() - lastRenewAt >= timing.renewDeadlineMs) stopLeading();
        return leading;
      }
    },
    async observe() {
      const now = clock.now().getTime();
      const lease = (await client.get(ref)) as LeaseObject | undefined;
      if (!lease) {
        setLeader(undefined);
        expiry = undefined;
        return;
      }
      const key = observationKey(lease);
      if (observed?.key !== key) observed = { key, at: now };
      const holder = lease.spec.holderIdentity ?? '';
      setLeader(holder || undefined);
      const duration = (lease.spec.leaseDurationSeconds ?? timing.leaseDurationMs / 1000) * 1000;
      expiry = holder ? observed.at + duration : undefined;
      if (holder !== identity) stopLeading();
    },
    async release() {
      if (!leading) return;
      const lease = (await client.get(ref)) as LeaseObject | undefined;
      stopLeading();
      if (!lease || lease.spec.holderIdentity !== identity) return;
      const now = clock.now();
      const { V1MicroTime } = await loadKubeParts();
      await client
        .replace({
          ...lease,
          spec: { ...lease.spec, holderIdentity: '', renewTime: new V1MicroTime(now.getTime()), leaseDurationSeconds: 1 },
        } as never)
        .catch(() => undefined);
    },
    async run(signal) {
      while (!signal.aborted) {
        await elector.step();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timing.retryPeriodMs);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
      }
      await elector.release();
    },
  };
  return elector;
}
