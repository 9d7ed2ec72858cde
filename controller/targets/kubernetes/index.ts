/** The Kubernetes target: server-side apply of Deployments, Services and HTTPRoutes per track, readiness, drift. */
export { createKubeClient, FIELD_MANAGER, isApiStatus, conflictsOf, type KubeClient, type KubeClientOptions, type ObjectRef, type ApiRequest } from './client.js';
export {
  LABELS,
  ANNOTATIONS,
  deploymentFor,
  servicesFor,
  httpRouteFor,
  replicaSplit,
  deploymentName,
  trackServiceName,
  previewServiceName,
  digestLabel,
  type TrafficMode,
  type TrafficState,
  type GatewayRef,
  type KubeObject,
  type ServiceContext,
} from './objects.js';
export { deploymentReadiness, trackStatusOf, type DeploymentReadiness } from './readiness.js';
export { createKubernetesTarget, differences, type KubernetesTarget, type KubernetesTargetOptions, type DriftReport } from './target.js';
export { createConfigMapStateStore, stateConfigMapName, type RolloutStateStore, type StoredState } from './statestore.js';
export { kubeConfigFor, createEnvironmentTarget, fanOut, mergeObservations, type EnvironmentTargetOptions, type KubeConfigSource, type MultiClusterTarget } from './clusters.js';
export {
  builderJobFor,
  builderJobName,
  builderJobStatus,
  defaultBuilderTemplatePath,
  jobStatusOf,
  loadBuilderTemplate,
  startBuilderJob,
  type BuilderRun,
  type JobPhase,
  type JobStatus,
} from './jobs.js';
export { createClusterRecordStore, controllerConfigMapName, readAllPairRecords, parseAuditLines, WRITER_ANNOTATION, WRITER_TOKEN_ANNOTATION, type WriterToken, type ControllerRecordStore, type ClusterRecordStoreOptions } from './controllerstore.js';
export { createDriftWatcher, type DriftWatcher, type DriftWatcherOptions } from './driftwatch.js';
export { createKubernetesTargetResolver, type EnvironmentView, type KubernetesTargetResolverOptions } from './resolver.js';
