/**
 * Runs one worker per environment/cluster pair this replica owns, following shard ownership: after each round
 * of the shard Leases, workers start for pairs whose shard was won and stop for pairs whose shard was lost
 * (before anyone else may take it: a replica that cannot renew stops within the renew deadline).
 *
 * A worker is whatever reconciles one pair, typically a controller Reconciler restricted to the environment,
 * with the pair's cluster as its only target and its records scoped to that cluster
 * (createClusterRecordStore({ scope: cluster })), so each pair's rollout state has exactly one writer.
 */
import { shardOf, type ShardManager } from './shards.js';

export interface Pair {
  environment: string;
  cluster: string;
}

export interface PairWorker {
  stop(): Promise<void>;
}

export interface ShardedRunnerOptions {
  shards: ShardManager;
  /** Every pair the environments repo names now (re-read each round, so new clusters are picked up). */
  pairs: () => Pair[] | Promise<Pair[]>;
  start: (pair: Pair) => PairWorker | Promise<PairWorker>;
  onError?: (pair: Pair, err: unknown) => void;
}

export interface ShardedRunner {
  /** One round: renew/take shard Leases, then start and stop workers to match. Returns the pairs run here. */
  step(): Promise<Pair[]>;
  running(): Pair[];
  /** Stop every worker and give the Leases up. */
  stop(): Promise<void>;
}

const keyOf = (p: Pair) => `${p.environment}/${p.cluster}`;

export function createShardedRunner(options: ShardedRunnerOptions): ShardedRunner {
  const workers = new Map<string, { pair: Pair; worker: PairWorker }>();

  async function stopWorker(key: string): Promise<void> {
    const entry = workers.get(key);
    if (!entry) return;
    workers.delete(key);
    try {
      await entry.worker.stop();
    } catch (err) {
      options.onError?.(entry.pair, err);
    }
  }

  const running = () => [...workers.values()].map((w) => w.pair).sort((a, b) => keyOf(a).localeCompare(keyOf(b)));

  return {
    running,
    async step() {
      const held = new Set(await options.shards.step());
      const wanted = new Map<string, Pair>();
      for (const pair of await options.pairs()) {
        if (held.has(shardOf(pair.environment, pair.cluster, options.shards.shards))) wanted.set(keyOf(pair), pair);
      }
      // Stop first: a pair that moved away must not run here and there at once.
      for (const key of [...workers.keys()]) if (!wanted.has(key)) await stopWorker(key);
      for (const [key, pair] of wanted) {
        if (workers.has(key)) continue;
        try {
          workers.set(key, { pair, worker: await options.start(pair) });
        } catch (err) {
          options.onError?.(pair, err);
        }
      }
      return running();
    },
    async stop() {
      for (const key of [...workers.keys()]) await stopWorker(key);
      await options.shards.release();
    },
  };
}
