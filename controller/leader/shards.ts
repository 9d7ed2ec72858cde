/**
 * Sharding: every environment/cluster pair belongs to one of N shards (a stable hash), and each shard has its
 * own Lease (`<prefix>-<i>`), so N controller replicas split the work and a replica that dies hands its
 * shards to the others within a lease duration or two.
 *
 * Spreading: a replica takes free shards only while it holds fewer than its fair share
 * (ceil(shards / expected replicas)); a shard nobody has taken for a further lease duration after it expired
 * (its replica is gone and the others are at their share) is taken regardless, so no shard stays orphaned.
 */
import { createHash } from 'node:crypto';
import type { KubeClient } from '../targets/kubernetes/index.js';
import { DEFAULT_LEASE_TIMING, createLeaderElector, type Clock, type FencingToken, type LeaderElector, type LeaseTiming } from './election.js';

/** The shard (0..shards-1) an environment/cluster pair belongs to. Stable across processes and releases. */
export function shardOf(environment: string, cluster: string, shards: number): number {
  if (!Number.isInteger(shards) || shards < 1) throw new Error(`shard count must be a positive integer, got ${shards}`);
  const digest = createHash('sha256').update(`${environment}\u0000${cluster}`).digest();
  return digest.readUInt32BE(0) % shards;
}

export interface ShardManagerOptions {
  client: KubeClient;
  namespace: string;
  identity: string;
  clock: Clock;
  shards: number;
  /** How many replicas are expected (the Deployment's replicas); sets the fair share. */
  replicas: number;
  leasePrefix?: string;
  timing?: Partial<LeaseTiming>;
  onAcquired?: (shard: number) => void;
  onLost?: (shard: number) => void;
  onError?: (err: unknown) => void;
}

export interface ShardManager {
  readonly shards: number;
  readonly timing: LeaseTiming;
  /** Shards this replica holds now, ascending. */
  held(): number[];
  /** The fencing token of a shard this replica holds (undefined when not held, or without Leases). */
  tokenOf(shard: number): FencingToken | undefined;
  /** Who holds a shard's Lease, as this replica last saw it. */
  holderOf(shard: number): string | undefined;
  /** Drop every shard whose last renewal is older than the renew deadline, at once (see enforceRenewDeadline). */
  enforceRenewDeadlines(): number[];
  owns(environment: string, cluster: string): boolean;
  /** One round over all shard leases: renew what is held, take what is free and fair. */
  step(): Promise<number[]>;
  release(): Promise<void>;
  run(signal: AbortSignal): Promise<void>;
}

export function createShardManager(options: ShardManagerOptions): ShardManager {
  const timing: LeaseTiming = { ...DEFAULT_LEASE_TIMING, ...options.timing };
  const prefix = options.leasePrefix ?? 'slipway-shard';
  const fairShare = Math.ceil(options.shards / Math.max(1, options.replicas));
  const electors: LeaderElector[] = [];
  for (let i = 0; i < options.shards; i++) {
    electors.push(
      createLeaderElector({
        client: options.client,
        namespace: options.namespace,
        name: `${prefix}-${i}`,
        identity: options.identity,
        clock: options.clock,
        timing,
        labels: { 'app.kubernetes.io/managed-by': 'slipway', 'slipway.dev/shard': String(i) },
        onStartedLeading: () => options.onAcquired?.(i),
        onStoppedLeading: () => options.onLost?.(i),
        ...(options.onError ? { onError: options.onError } : {}),
      }),
    );
  }
  /** When this replica first saw each shard without a holder (by its clock). */
  const freeSince = new Map<number, number>();
  const held = () => electors.flatMap((e, i) => (e.isLeader() ? [i] : []));

  const manager: ShardManager = {
    shards: options.shards,
    timing,
    held,
    holderOf: (shard) => electors[shard]?.leader(),
    tokenOf: (shard) => electors[shard]?.fencingToken(),
    enforceRenewDeadlines() {
      for (const e of electors) e.enforceRenewDeadline();
      return held();
    },
    owns: (environment, cluster) => electors[shardOf(environment, cluster, options.shards)].isLeader(),
    async step() {
      // Renew first, so a replica at its share never counts a shard it is about to lose.
      for (const e of electors) if (e.isLeader()) await e.step();
      for (const [i, e] of electors.entries()) {
        if (e.isLeader()) {
          freeSince.delete(i);
          continue;
        }
        if (held().length < fairShare) {
          await e.step();
          continue;
        }
        try {
          await e.observe();
        } catch (err) {
          options.onError?.(err);
          continue;
        }
        const now = options.clock.now().getTime();
        const expiresAt = e.expiresAt();
        let orphaned: boolean;
        if (expiresAt === undefined) {
          const since = freeSince.get(i) ?? now;
          freeSince.set(i, since);
          orphaned = now >= since + timing.leaseDurationMs;
        } else {
          freeSince.delete(i);
          orphaned = now >= expiresAt + timing.leaseDurationMs;
        }
        if (orphaned) await e.step();
      }
      return held();
    },
    async release() {
      for (const e of electors) await e.release();
    },
    async run(signal) {
      while (!signal.aborted) {
        await manager.step();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timing.retryPeriodMs);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
      }
      await manager.release();
    },
  };
  return manager;
}

/**
 * One replica owning everything without Leases (`--state cluster` without `--leader-elect`): one shard, always
 * held. The records are still claimed and fenced, so a second such replica started by mistake takes them over
 * and the first one's writes are refused rather than interleaved.
 */
export function createSoleShardManager(identity: string): ShardManager {
  return {
    shards: 1,
    timing: { ...DEFAULT_LEASE_TIMING },
    held: () => [0],
    holderOf: () => identity,
    tokenOf: () => undefined,
    enforceRenewDeadlines: () => [0],
    owns: () => true,
    step: async () => [0],
    release: async () => undefined,
    run: async (signal) => {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    },
  };
}
