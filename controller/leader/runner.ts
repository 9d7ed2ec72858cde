/**
 * Runs one worker per environment/cluster pair this replica owns, following shard ownership: after each round
 * of the shard Leases, workers start for pairs whose shard was won and stop for pairs whose shard was lost
 * (before anyone else may take it: a replica that cannot renew stops within the renew deadline).
 *
 * A worker is whatever reconciles one pair, typically a controller Reconciler restricted to the environment,
 * with the pair's cluster as its only target and its records scoped to that cluster
 * (createClusterRecordStore({ scope: cluster })), so each pair's rollout state has exactly one writer.
 *
 * "At once": a worker's `revoke()` runs synchronously the moment its shard is lost (before its `stop()` is
 * awaited), and `run()` checks the renew deadline every second on its own timer, so a lease round that hangs
 * on a dead API server does not keep a worker writing past the deadline.
 */
import { shardOf, type ShardManager } from './shards.js';

export interface Pair {
  environment: string;
  cluster: string;
}

export interface PairWorker {
  /** Refuse every further write, synchronously (the shard is gone). */
  revoke?(reason: string): void;
  stop(): Promise<void>;
}

export interface ShardedRunnerOptions {
  shards: ShardManager;
  /** Every pair the environments repo names now (re-read each round, so new clusters are picked up). */
  pairs: () => Pair[] | Promise<Pair[]>;
  start: (pair: Pair) => PairWorker | Promise<PairWorker>;
  onError?: (pair: Pair, err: unknown) => void;
  /** After each round (e.g. to refresh what this replica shows of pairs it does not run). */
  onRound?: (running: Pair[]) => void | Promise<void>;
}

export interface ShardedRunner {
  /** One round: renew/take shard Leases, then start and stop workers to match. Returns the pairs run here. */
  step(): Promise<Pair[]>;
  running(): Pair[];
  /** The shard a pair belongs to, and who holds its Lease as this replica last saw it. */
  ownerOf(pair: Pair): { shard: number; holder?: string; here: boolean };
  /** Revoke the workers of shards whose renewal is past the deadline (synchronous part), then stop them. */
  enforce(): Promise<void>;
  /** Step every retry period and enforce the deadline every second until the signal aborts, then stop. */
  run(signal: AbortSignal): Promise<void>;
  /** Stop every worker and give the Leases up. */
  stop(): Promise<void>;
}

export const pairKey = (p: Pair): string => `${p.environment}/${p.cluster}`;

export function createShardedRunner(options: ShardedRunnerOptions): ShardedRunner {
  const workers = new Map<string, { pair: Pair; worker: PairWorker }>();
  const shardCount = options.shards.shards;

  async function stopWorker(key: string, reason: string, alreadyRevoked = false): Promise<void> {
    const entry = workers.get(key);
    if (!entry) return;
    workers.delete(key);
    try {
      if (!alreadyRevoked) entry.worker.revoke?.(reason);
      await entry.worker.stop();
    } catch (err) {
      options.onError?.(entry.pair, err);
    }
  }

  /** Stop (revoking first, all of them before awaiting any) the workers whose shard is not held. */
  async function stopUnheld(held: Set<number>, reason: string): Promise<void> {
    const lost = [...workers.entries()].filter(([, w]) => !held.has(shardOf(w.pair.environment, w.pair.cluster, shardCount)));
    for (const [, w] of lost) w.worker.revoke?.(reason);
    for (const [key] of lost) await stopWorker(key, reason, true);
  }

  const running = () => [...workers.values()].map((w) => w.pair).sort((a, b) => pairKey(a).localeCompare(pairKey(b)));

  const runner: ShardedRunner = {
    running,
    ownerOf(pair) {
      const shard = shardOf(pair.environment, pair.cluster, shardCount);
      const here = options.shards.held().includes(shard);
      const holder = options.shards.holderOf(shard);
      return { shard, here, ...(holder ? { holder } : {}) };
    },
    async enforce() {
      await stopUnheld(new Set(options.shards.enforceRenewDeadlines()), 'the shard Lease was not renewed within the renew deadline');
    },
    async step() {
      const held = new Set(await options.shards.step());
      const wanted = new Map<string, Pair>();
      for (const pair of await options.pairs()) {
        if (held.has(shardOf(pair.environment, pair.cluster, shardCount))) wanted.set(pairKey(pair), pair);
      }
      // Stop first: a pair that moved away must not run here and there at once.
      await stopUnheld(held, 'the shard Lease is held by another replica');
      for (const key of [...workers.keys()]) if (!wanted.has(key)) await stopWorker(key, 'the pair left the environments repository');
      for (const [key, pair] of wanted) {
        if (workers.has(key)) continue;
        try {
          workers.set(key, { pair, worker: await options.start(pair) });
        } catch (err) {
          options.onError?.(pair, err);
        }
      }
      const now = running();
      await options.onRound?.(now);
      return now;
    },
    async run(signal) {
      const watchdog = setInterval(() => void runner.enforce(), Math.min(1000, options.shards.timing.retryPeriodMs));
      watchdog.unref?.();
      try {
        while (!signal.aborted) {
          try {
            await runner.step();
          } catch (err) {
            for (const w of workers.values()) options.onError?.(w.pair, err);
          }
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, options.shards.timing.retryPeriodMs);
            signal.addEventListener('abort', () => {
              clearTimeout(timer);
              resolve();
            }, { once: true });
          });
        }
      } finally {
        clearInterval(watchdog);
      }
      await runner.stop();
    },
    async stop() {
      for (const w of workers.values()) w.worker.revoke?.('the controller is stopping');
      for (const key of [...workers.keys()]) await stopWorker(key, 'the controller is stopping', true);
      await options.shards.release();
    },
  };
  return runner;
}
