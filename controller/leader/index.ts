/** Leader election on coordination.k8s.io/v1 Leases, and sharding of environment/cluster pairs over N Leases. */
export {
  createLeaderElector,
  leaseDecision,
  observationKey,
  supersedes,
  type FencingToken,
  DEFAULT_LEASE_TIMING,
  type Clock,
  type LeaderElector,
  type LeaderElectorOptions,
  type LeaseAction,
  type LeaseObject,
  type LeaseTiming,
  type Observation,
} from './election.js';
export { createShardManager, createSoleShardManager, shardOf, type ShardManager, type ShardManagerOptions } from './shards.js';
export { createShardedRunner, pairKey, type Pair, type PairWorker, type ShardedRunner, type ShardedRunnerOptions } from './runner.js';
