/**
 * The production ports, put together once: the environments repo through lib/envrepo, provenance through
 * lib/provenance, freeze windows through lib/freeze, rollback by revert through lib/rollback, and a target per
 * environment as its environment.yaml names it: the local target (processes behind a weighted proxy, analysis
 * over the proxy's own request log) or the Kubernetes target (analysis through Prometheus when the
 * environment names `analysis.prometheus`).
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { activeWindows } from '../lib/freeze/index.js';
import { createProvenanceVerifier } from '../lib/provenance/index.js';
import { createLocalRollback } from '../lib/rollback/index.js';
import { openImageStore } from '../lib/oci/index.js';
import { SlipwayError } from '../lib/errors.js';
import { homePath } from '../lib/home.js';
import { createAnalysisProvider } from './analysis/index.js';
import type { AnalysisProvider } from './analysis/types.js';
import { createLocalTarget, type LocalTarget } from './targets/local/index.js';
import type { DriftReport, DriftWatcher, EnvironmentView, KubeClient, MultiClusterTarget } from './targets/kubernetes/index.js';
import { createDriftWatcher } from './targets/kubernetes/driftwatch.js';
import type { Target } from './targets/types.js';
import type { Clock, EnvironmentSource } from './reconcile/index.js';
import { freezeCalendar } from './gates/index.js';
import { GitEnvironmentSource } from './sync/index.js';
import { Controller } from './controller.js';
import { LocalGitProvider } from '../lib/gitprovider/index.js';
import type { RollbackPort } from '../lib/gitprovider/types.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { createShardManager, createSoleShardManager, pairKey, type LeaseTiming, type Pair, type ShardManager } from './leader/index.js';
import type { PairRecords, PairStore } from './sharded.js';
import type { EnvironmentRecord, ServiceRecord } from './reconcile/index.js';

export interface LocalControllerOptions {
  repo: string;
  environments?: string[];
  stateDir?: string;
  schedule?: string;
  /** Where the local target keeps its image cache and run records (default $SLIPWAY_HOME). */
  home?: string;
  /** Where relative `kubeconfig` paths in environment.yaml are resolved (default: the repository's working tree). */
  kubeconfigBaseDir?: string;
  /** The controller's clock (tests drive it; default the system clock). */
  clock?: Clock;
  /** How often the drift watcher looks at every Kubernetes service once started (default 60 s). */
  driftIntervalMs?: number;
  log?: (line: string) => void;
  /**
   * Keep records and the audit trail in ConfigMaps of the controller's own namespace, one reconciler per
   * environment/cluster pair, and (with leaderElect) run only the pairs whose shard Lease this replica holds.
   * Without it: the file-backed single controller over stateDir, as always.
   */
  cluster?: ClusterStateOptions;
}

export interface ClusterStateOptions {
  /** Share the pairs with other replicas through one coordination.k8s.io/v1 Lease per shard. */
  leaderElect: boolean;
  /** Where Leases and records live (the controller's own namespace). */
  namespace: string;
  /** This replica in Leases and records (default POD_NAME, else <hostname>-<pid>). */
  identity: string;
  /** Number of shards (Leases); each environment/cluster pair belongs to shardOf(environment, cluster, shards). */
  shards: number;
  /** Replicas expected (the Deployment's replicas): a replica takes free shards up to ceil(shards / replicas). */
  replicas: number;
  /** The cluster the controller runs in (default: KUBECONFIG, ~/.kube/config, or the pod's service account). */
  kubeConfig?: KubeConfig;
  /** Lease timing; production leaves it unset (15 s / 10 s / 2 s). */
  leaseTiming?: Partial<LeaseTiming>;
  /** When the live audit trail of a pair moves to an archive ConfigMap (default 256 KiB). */
  auditSegmentBytes?: number;
}

export interface LocalController {
  controller: Controller;
  target: LocalTarget;
  /**
   * Puts back hand edits to the objects of every service of a Kubernetes environment, each recorded in the
   * audit log as `drift-repaired`. Not started here: `slipway controller` starts it with the sync loop.
   */
  drift: DriftWatcher;
  close(): Promise<void>;
}

type KubernetesModule = typeof import('./targets/kubernetes/index.js');
let kubernetesModule: Promise<KubernetesModule> | undefined;
/**
 * The Kubernetes target and @kubernetes/client-node (~1 s of start-up, 2,500 modules): loaded only once an
 * environment targets Kubernetes or the state lives in a cluster, so a controller on the local target starts without.
 */
const loadKubernetes = (): Promise<KubernetesModule> => (kubernetesModule ??= import('./targets/kubernetes/index.js'));

/** A target whose implementation is still loading (an environment switched to Kubernetes after start): every call waits for it. */
function deferredTarget(load: () => Promise<Target>): Target {
  let loaded: Promise<Target> | undefined;
  const get = () => (loaded ??= load());
  return {
    type: 'kubernetes',
    ensureTrack: async (ref, track, spec) => (await get()).ensureTrack(ref, track, spec),
    setWeight: async (ref, weight) => (await get()).setWeight(ref, weight),
    promote: async (ref) => (await get()).promote(ref),
    removeTrack: async (ref, track) => (await get()).removeTrack(ref, track),
    removeService: async (ref) => (await get()).removeService(ref),
    observe: async (ref) => (await get()).observe(ref),
    close: async () => {
      if (loaded) await (await loaded).close();
    },
  };
}

export const freezeWindows = freezeCalendar({
  activeWindows: (windows, at) => activeWindows(windows, at).map((w) => ({ name: w.name, ...(w.reason ? { reason: w.reason } : {}), end: w.end })),
});

/** A controller on the embedded local target, with every real port. */
export async function createLocalController(options: LocalControllerOptions): Promise<LocalController> {
  const source = new GitEnvironmentSource({ location: options.repo });
  const repo = await source.envRepo();
  let rollback: RollbackPort;
  if (repo.url) {
    rollback = {
      revert: async () => {
        throw new SlipwayError(
          'ROLLBACK_UNSUPPORTED',
          `automatic revert commits need a repository on disk or a git provider; ${repo.source} is a URL: revert the change by hand`,
          'stalling',
        );
      },
    };
  } else {
    rollback = createLocalRollback({ fs, ...(repo.dir ? { dir: repo.dir } : {}), gitdir: repo.gitdir });
  }
  const verifier = createProvenanceVerifier();
  const proposals = repo.url ? undefined : new LocalGitProvider({ repo: repo.dir ?? repo.gitdir, verify: (r) => verifier.verify(r) });
  const target = createLocalTarget({ openStore: (repository) => openImageStore(repository), ...(options.home ? { home: options.home } : {}) });
  const desired = recordingSource(source);
  await desired.prime(options.log);
  const clock = options.clock ?? { now: () => new Date() };
  const log = options.log ?? (() => undefined);
  // The controller (and its audit log) is made below; drift is only reported once it runs.
  let recordDrift: (report: DriftReport) => void = () => undefined;
  const kube = options.cluster || desired.all().some(isKubernetes) ? await loadKubernetes() : undefined;
  const resolverOptions = {
    lookup: desired.lookup,
    baseDir: options.kubeconfigBaseDir ?? repo.dir ?? process.cwd(),
    onDrift: (report: DriftReport) => recordDrift(report),
  };
  let kubernetesTargetFor = kube?.createKubernetesTargetResolver(resolverOptions);
  const kubernetesTargets = new Set<Target>();
  const remember = <T extends Target>(resolved: T): T => {
    kubernetesTargets.add(resolved);
    return resolved;
  };
  async function loadedKubernetesTargetFor(environment: string): Promise<MultiClusterTarget> {
    kubernetesTargetFor ??= (await loadKubernetes()).createKubernetesTargetResolver(resolverOptions);
    return remember(kubernetesTargetFor(environment));
  }
  const targetFor = (environment: string): Target => {
    if (!isKubernetes(desired.lookup(environment))) return target;
    if (!kubernetesTargetFor) return deferredTarget(() => loadedKubernetesTargetFor(environment));
    return remember(kubernetesTargetFor(environment));
  };
  const only = options.environments ? new Set(options.environments) : undefined;
  const sharding = options.cluster
    ? clusterSharding(options.cluster, kube!, options.cluster.kubeConfig ?? (await defaultKubeConfig()), {
        pairsOf: () => pairsOf(desired.all(), only, log),
        pairTarget: (pair) => {
          const resolved = pairTargetFor(pair);
          kubernetesTargets.add(resolved);
          return resolved;
        },
        log,
      })
    : undefined;
  const pairResolvers = new Map<string, (environment: string) => MultiClusterTarget>();
  /** The Kubernetes target of one cluster of an environment (a pair, on shards). */
  function pairTargetFor(pair: Pair): MultiClusterTarget {
    let resolver = pairResolvers.get(pairKey(pair));
    if (!resolver) {
      resolver = kube!.createKubernetesTargetResolver({
        lookup: desired.lookup,
        baseDir: options.kubeconfigBaseDir ?? repo.dir ?? process.cwd(),
        onDrift: (report) => recordDrift(report),
        clusterFilter: (_environment, cluster) => cluster.name === pair.cluster,
      });
      pairResolvers.set(pairKey(pair), resolver);
    }
    return resolver(pair.environment);
  }
  const controller = new Controller({
    source: desired.source,
    targetFor,
    verifier,
    ...(proposals ? { proposals } : {}),
    freeze: freezeWindows,
    analysis: analysisPerEnvironment(desired.lookup, createAnalysisProvider({ requestLog: target.requestLog }), createAnalysisProvider({})),
    rollback,
    extraMetrics: [target.metricsRegistry],
    ...(options.stateDir ? { stateDir: options.stateDir } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.environments ? { environments: options.environments } : {}),
    ...(options.schedule ? { schedule: options.schedule } : {}),
    ...(options.log ? { log: options.log } : {}),
    ...(sharding ? { sharding } : {}),
  });
  recordDrift = (report) => {
    const at = clock.now().toISOString();
    log(`drift on ${report.environment}/${report.service}: ${report.message}`);
    void controller.audit
      .record({
        id: `drift/${report.environment}/${report.service}/${report.cluster}/${report.object}/${report.field}/${at}`,
        at,
        environment: report.environment,
        service: report.service,
        action: 'drift-repaired',
        actor: report.manager ?? 'unknown',
        message: report.message,
        data: { cluster: report.cluster, object: report.object, field: report.field },
      })
      .catch((err: unknown) => log(`audit: cannot record drift: ${(err as Error).message}`));
  };
  /** On shards, only the pairs this replica runs are looked after, each on its own cluster. */
  const runningPairs = (environment: string): Pair[] => controller.sharded?.runningPairs().filter((p) => p.environment === environment) ?? [];
  const drift = createDriftWatcher({
    target: {
      repairDrift: async (ref) => {
        if (!controller.sharded) return (await loadedKubernetesTargetFor(ref.environment)).repairDrift(ref);
        const reports = [];
        for (const pair of runningPairs(ref.environment)) reports.push(...(await pairTargetFor(pair).repairDrift(ref)));
        return reports;
      },
    },
    services: () =>
      desired
        .all()
        .filter((env) => isKubernetes(env) && (!only || only.has(env.name)) && (!controller.sharded || runningPairs(env.name).length > 0))
        .flatMap((env) => Object.keys(env.services).map((service) => ({ environment: env.name, service }))),
    // Each repaired field already reached recordDrift through the target's own onDrift.
    onDrift: () => undefined,
    onError: (ref, err) => log(`drift check of ${ref.environment}/${ref.service}: ${(err as Error).message}`),
    ...(options.driftIntervalMs !== undefined ? { intervalMs: options.driftIntervalMs } : {}),
  });
  return {
    controller,
    target,
    drift,
    async close() {
      drift.stop();
      await controller.stop();
      await target.close();
      for (const t of kubernetesTargets) await t.close();
    },
  };
}

const isKubernetes = (env: EnvironmentView | undefined): boolean => env?.config.spec.target.type === 'kubernetes';

/** Who this process is in Leases and records: the pod's name, else <hostname>-<pid>. */
export function defaultIdentity(env: NodeJS.ProcessEnv = process.env): string {
  return env.POD_NAME?.trim() || `${hostname()}-${process.pid}`;
}

const warnedLocal = new Set<string>();

/** Every environment/cluster pair of the Kubernetes environments main names now. */
export function pairsOf(environments: EnvironmentView[], only: Set<string> | undefined, log: (line: string) => void): Pair[] {
  const pairs: Pair[] = [];
  for (const env of environments) {
    if (only && !only.has(env.name)) continue;
    const target = env.config.spec.target;
    if (target.type !== 'kubernetes') {
      if (!warnedLocal.has(env.name)) {
        warnedLocal.add(env.name);
        log(`environment ${env.name} targets ${target.type}: with cluster state only Kubernetes environments are reconciled (run a single file-backed controller for it)`);
      }
      continue;
    }
    for (const cluster of target.kubernetes.clusters) pairs.push({ environment: env.name, cluster: cluster.name });
  }
  return pairs.sort((a, b) => pairKey(a).localeCompare(pairKey(b)));
}

/** Leases (or sole ownership), records and audit in ConfigMaps of the controller's namespace. */
function clusterSharding(
  options: ClusterStateOptions,
  kube: KubernetesModule,
  kc: KubeConfig,
  io: { pairsOf: () => Pair[]; pairTarget: (pair: Pair) => Target; log: (line: string) => void },
): NonNullable<ConstructorParameters<typeof Controller>[0]['sharding']> {
  const { createClusterRecordStore, readAllPairRecords } = kube;
  const client: KubeClient = kube.createKubeClient(kc);
  const { namespace, identity, log } = { ...options, log: io.log };
  // Leases run on the wall clock whatever clock decides rollouts: a lease is about real time passing.
  const wall = { now: () => new Date() };
  const shards: ShardManager = options.leaderElect
    ? createShardManager({
        client,
        namespace,
        identity,
        clock: wall,
        shards: options.shards,
        replicas: options.replicas,
        ...(options.leaseTiming ? { timing: options.leaseTiming } : {}),
        onAcquired: (shard) => log(`leader of shard ${shard} (Lease ${namespace}/slipway-shard-${shard})`),
        onLost: (shard) => log(`no longer leader of shard ${shard}: its pairs stop here at once`),
        onError: (err) => log(`lease: ${(err as Error).message}`),
      })
    : createSoleShardManager(identity);
  return {
    shards,
    identity,
    pairs: io.pairsOf,
    storeFor: (pair): PairStore =>
      createClusterRecordStore<ServiceRecord, EnvironmentRecord>({
        client,
        namespace,
        scope: pair.cluster,
        writer: identity,
        ...(options.auditSegmentBytes ? { auditSegmentBytes: options.auditSegmentBytes } : {}),
      }),
    targetFor: io.pairTarget,
    readAll: () => readAllPairRecords<ServiceRecord, EnvironmentRecord>(client, namespace) as Promise<PairRecords[]>,
    history: async (filter) => {
      const clusters = [...new Set(io.pairsOf().filter((p) => !filter.environment || p.environment === filter.environment).map((p) => p.cluster))];
      const entries = [];
      for (const cluster of clusters) entries.push(...(await createClusterRecordStore({ client, namespace, scope: cluster }).list(filter)));
      return entries.sort((a, b) => a.at.localeCompare(b.at));
    },
  };
}

async function defaultKubeConfig(): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  kc.loadFromDefault();
  // With nothing to load, client-node falls back to an unauthenticated http://localhost:8080: never what is meant.
  const current = kc.getCurrentCluster();
  if (!current || (current.name === 'cluster' && current.server === 'http://localhost:8080')) {
    throw new SlipwayError('KUBE_CONFIG', 'cluster state needs the cluster the controller runs in: set KUBECONFIG, or run it in a pod with a service account', 'stalling');
  }
  return kc;
}

/**
 * The source the controller reads, remembering the environments of the last commit that loaded cleanly, so
 * targetFor and analysis answer per environment as main has it now (a rejected commit changes nothing).
 */
export function recordingSource(inner: EnvironmentSource): {
  source: EnvironmentSource;
  lookup: (environment: string) => EnvironmentView | undefined;
  all: () => EnvironmentView[];
  prime(log?: (line: string) => void): Promise<void>;
} {
  let environments = new Map<string, EnvironmentView>();
  const source: EnvironmentSource = {
    location: inner.location,
    head: () => inner.head(),
    async load(commit) {
      const result = await inner.load(commit);
      if (result.ok) environments = new Map(result.state.environments.map((e) => [e.name, e]));
      return result;
    },
    diff: (from, to) => inner.diff(from, to),
    commitsTouching: (path, from, to, limit) => inner.commitsTouching(path, from, to, limit),
  };
  return {
    source,
    lookup: (environment) => environments.get(environment),
    all: () => [...environments.values()],
    // A rollout resumed from disk runs before the first sync; it needs to know its environment's target already.
    async prime(log) {
      try {
        await source.load(await inner.head());
      } catch (err) {
        log?.(`cannot read main yet (${(err as Error).message}); targets are chosen at the first sync`);
      }
    },
  };
}

/**
 * Local environments judge from the proxy's request log. A Kubernetes environment that names
 * `analysis.prometheus` is judged through Prometheus (the provider need not be spelled out); otherwise it gets
 * the builtin provider like any other, which says plainly that it has no request log.
 */
export function analysisPerEnvironment(lookup: (environment: string) => EnvironmentView | undefined, local: AnalysisProvider, cluster: AnalysisProvider): AnalysisProvider {
  return {
    analyze(ctx) {
      const env = lookup(ctx.environment);
      if (!isKubernetes(env)) return local.analyze(ctx);
      const prometheus = ctx.settings.prometheus ?? env?.config.spec.analysis?.prometheus;
      if (!prometheus || ctx.settings.provider === 'builtin') return local.analyze(ctx);
      return cluster.analyze({ ...ctx, settings: { ...ctx.settings, provider: 'prometheus', prometheus } });
    },
  };
}

/** A secret under $SLIPWAY_HOME/controller (made once, 0600), unless the environment variable names one. */
export function controllerSecret(name: 'token' | 'webhook-secret', envVar: string, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[envVar];
  if (fromEnv) return fromEnv.trim();
  const file = homePath('controller', name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dirname(file), { recursive: true });
  const value = randomBytes(24).toString('base64url');
  writeFileSync(file, `${value}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return value;
}

/** Where a running controller says it listens, for `slipway status`. */
export function endpointFile(): string {
  return join(homePath('controller'), 'endpoint');
}
