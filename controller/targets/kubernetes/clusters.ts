/**
 * From environment.yaml's `target.kubernetes.clusters` to a Target: one KubernetesTarget per cluster (kubeconfig
 * file and context, or the in-cluster service account), fanned out so an environment spanning several
 * clusters moves them together and counts as ready only when every cluster is.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { SlipwayError } from '../../../lib/errors.js';
import type { KubernetesCluster } from '../../../schemas/index.js';
import type { ServiceObservation, Target, TrackStatus } from '../types.js';
import { createKubeClient, type KubeClientOptions } from './client.js';
import { createKubernetesTarget, type DriftReport, type KubernetesTarget, type KubernetesTargetOptions } from './target.js';

export interface KubeConfigSource {
  /** Where relative kubeconfig paths are resolved (default: the working directory). */
  baseDir?: string;
  /** Prefix of /var/run/secrets/kubernetes.io/serviceaccount for the in-cluster config (tests point it elsewhere). */
  serviceAccountRoot?: string;
}

export function kubeConfigFor(cluster: KubernetesCluster, source: KubeConfigSource = {}): KubeConfig {
  const kc = new KubeConfig();
  const where = `cluster "${cluster.name}" (environment.yaml target.kubernetes.clusters)`;
  if (cluster.inCluster) {
    const root = source.serviceAccountRoot ?? '';
    const dir = `${root}/var/run/secrets/kubernetes.io/serviceaccount`;
    if (!existsSync(join(dir, 'token')) || !process.env.KUBERNETES_SERVICE_HOST) {
      throw new SlipwayError(
        'KUBE_CONFIG',
        `${where} says inCluster: true, but this process is not running in a pod (no ${dir}/token or KUBERNETES_SERVICE_HOST): use a kubeconfig instead`,
        'stalling',
        { cluster: cluster.name },
      );
    }
    // The token is read from its file on every request, so a rotated (projected) token is picked up.
    kc.loadFromCluster(root);
  } else if (cluster.kubeconfig) {
    const raw = cluster.kubeconfig.startsWith('~/') ? join(homedir(), cluster.kubeconfig.slice(2)) : cluster.kubeconfig;
    const path = isAbsolute(raw) ? raw : resolve(source.baseDir ?? process.cwd(), raw);
    if (!existsSync(path)) {
      throw new SlipwayError('KUBE_CONFIG', `${where}: kubeconfig ${path} does not exist`, 'stalling', { cluster: cluster.name, path });
    }
    try {
      kc.loadFromFile(path);
    } catch (err) {
      throw new SlipwayError('KUBE_CONFIG', `${where}: kubeconfig ${path} is not valid: ${(err as Error).message}`, 'stalling', { cluster: cluster.name, path });
    }
  } else {
    kc.loadFromDefault();
  }
  if (cluster.context) {
    const known = kc.getContexts().map((c) => c.name);
    if (!known.includes(cluster.context)) {
      throw new SlipwayError(
        'KUBE_CONFIG',
        `${where}: context "${cluster.context}" is not in the kubeconfig (it has: ${known.join(', ') || 'none'})`,
        'stalling',
        { cluster: cluster.name },
      );
    }
    kc.setCurrentContext(cluster.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new SlipwayError('KUBE_CONFIG', `${where}: the kubeconfig names no current cluster: set current-context or "context"`, 'stalling', { cluster: cluster.name });
  }
  return kc;
}

export interface EnvironmentTargetOptions extends KubeConfigSource {
  clusters: KubernetesCluster[];
  client?: KubeClientOptions;
  trafficModeOf?: KubernetesTargetOptions['trafficModeOf'];
  progressDeadlineSeconds?: number;
  onDrift?: (report: DriftReport) => void;
  /** Build the KubeConfig of a cluster (default: kubeConfigFor). */
  kubeConfig?: (cluster: KubernetesCluster) => KubeConfig;
}

export interface MultiClusterTarget extends Target {
  readonly type: 'kubernetes';
  readonly targets: readonly KubernetesTarget[];
  repairDrift(ref: Parameters<KubernetesTarget['repairDrift']>[0]): Promise<DriftReport[]>;
}

export function createEnvironmentTarget(options: EnvironmentTargetOptions): MultiClusterTarget {
  if (options.clusters.length === 0) throw new SlipwayError('KUBE_CONFIG', 'target.kubernetes.clusters is empty', 'stalling');
  const targets = options.clusters.map((cluster) =>
    createKubernetesTarget({
      client: createKubeClient((options.kubeConfig ?? ((c) => kubeConfigFor(c, options)))(cluster), options.client),
      namespace: cluster.namespace,
      cluster: cluster.name,
      ...(cluster.gateway ? { gateway: cluster.gateway } : {}),
      ...(options.trafficModeOf ? { trafficModeOf: options.trafficModeOf } : {}),
      ...(options.progressDeadlineSeconds !== undefined ? { progressDeadlineSeconds: options.progressDeadlineSeconds } : {}),
      ...(options.onDrift ? { onDrift: options.onDrift } : {}),
    }),
  );
  return fanOut(targets);
}

/** All clusters in step: writes go to each (in order, so the first cluster leads), observations are merged. */
export function fanOut(targets: KubernetesTarget[]): MultiClusterTarget {
  const each = async (fn: (t: KubernetesTarget) => Promise<void>) => {
    for (const t of targets) await fn(t);
  };
  return {
    type: 'kubernetes',
    targets,
    ensureTrack: (ref, track, spec) => each((t) => t.ensureTrack(ref, track, spec)),
    setWeight: (ref, w) => each((t) => t.setWeight(ref, w)),
    promote: (ref) => each((t) => t.promote(ref)),
    removeTrack: (ref, track) => each((t) => t.removeTrack(ref, track)),
    removeService: (ref) => each((t) => t.removeService(ref)),
    async observe(ref) {
      const all = await Promise.all(targets.map((t) => t.observe(ref)));
      return mergeObservations(all, targets.map((t) => t.cluster));
    },
    async repairDrift(ref) {
      const reports: DriftReport[] = [];
      for (const t of targets) reports.push(...(await t.repairDrift(ref)));
      return reports;
    },
    async close() {
      await each((t) => t.close());
    },
  };
}

/**
 * A track counts as the slowest cluster's: ready replicas are the minimum, a digest that differs anywhere
 * counts as not ready there (0), and any cluster's failure fails the track, named by cluster.
 */
export function mergeObservations(observations: ServiceObservation[], clusters: string[]): ServiceObservation {
  const merge = (track: 'stable' | 'canary'): TrackStatus | undefined => {
    const statuses = observations.map((o) => o[track]);
    const first = statuses.find((s) => s !== undefined);
    if (!first) return undefined;
    let ready = Infinity;
    let failed: string | undefined;
    statuses.forEach((s, i) => {
      if (!s || s.digest !== first.digest) ready = 0;
      else ready = Math.min(ready, s.readyReplicas);
      if (s?.failed && !failed) failed = `cluster ${clusters[i]}: ${s.failed}`;
    });
    return { digest: first.digest, replicas: first.replicas, readyReplicas: ready === Infinity ? 0 : ready, ...(failed ? { failed } : {}) };
  };
  const stable = merge('stable');
  const canary = merge('canary');
  const endpoint = observations.find((o) => o.endpoint)?.endpoint;
  return {
    ...(stable ? { stable } : {}),
    ...(canary ? { canary } : {}),
    canaryWeight: Math.min(...observations.map((o) => o.canaryWeight)),
    ...(endpoint ? { endpoint } : {}),
  };
}
