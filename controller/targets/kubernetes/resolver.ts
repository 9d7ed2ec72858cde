/**
 * `targetFor(environment)` for the controller: the Kubernetes target of an environment as its environment.yaml
 * describes it now. Targets are cached per environment and rebuilt when its cluster list changes; each
 * service's traffic mode (replica ratio, gateway weights, blue-green selector) follows its strategy in git.
 */
import { SlipwayError } from '../../../lib/errors.js';
import { strategyType, type EnvironmentConfig, type KubernetesCluster, type ServiceConfig } from '../../../schemas/index.js';
import { createEnvironmentTarget, type EnvironmentTargetOptions, type MultiClusterTarget } from './clusters.js';

/** What the resolver needs of an environment (lib/envrepo's EnvironmentState has it). */
export interface EnvironmentView {
  name: string;
  config: EnvironmentConfig;
  services: Record<string, ServiceConfig>;
}

export interface KubernetesTargetResolverOptions extends Omit<EnvironmentTargetOptions, 'clusters' | 'trafficModeOf'> {
  /** The environment as main has it now (undefined when main does not name it). */
  lookup: (environment: string) => EnvironmentView | undefined;
  /** Only these clusters of an environment (a sharded replica passes the pairs it owns). */
  clusterFilter?: (environment: string, cluster: KubernetesCluster) => boolean;
}

export function createKubernetesTargetResolver(options: KubernetesTargetResolverOptions): (environment: string) => MultiClusterTarget {
  const cache = new Map<string, { key: string; target: MultiClusterTarget }>();
  return (environment) => {
    const env = options.lookup(environment);
    if (!env) throw new SlipwayError('UNKNOWN_ENVIRONMENT', `environment ${environment} is not in the environments repository`, 'stalling');
    const target = env.config.spec.target;
    if (target.type !== 'kubernetes') {
      throw new SlipwayError('NOT_KUBERNETES', `${environment}/environment.yaml: target.type is ${target.type}, not kubernetes`, 'stalling', { environment });
    }
    const clusters = target.kubernetes.clusters.filter((c) => options.clusterFilter?.(environment, c) ?? true);
    const key = JSON.stringify(clusters);
    const cached = cache.get(environment);
    if (cached && cached.key === key) return cached.target;
    const { lookup, clusterFilter, ...rest } = options;
    void lookup;
    void clusterFilter;
    const built = createEnvironmentTarget({
      ...rest,
      clusters,
      trafficModeOf: (ref) => strategyType(options.lookup(ref.environment)?.services[ref.service]?.spec.strategy),
    });
    cache.set(environment, { key, target: built });
    return built;
  };
}
