/**
 * Readiness of one track from its Deployment's status, as the deployment controller reports it: the status
 * counts only once `observedGeneration` has caught up with `generation`; a rollout is done when every
 * replica is updated and available and no old replica is left; `ProgressDeadlineExceeded` or a
 * `ReplicaFailure` condition is a failure with the condition's message as the reason.
 */
import type { TrackStatus } from '../types.js';
import { ANNOTATIONS, trackSpecOf, type KubeObject } from './objects.js';

interface DeploymentCondition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

interface DeploymentStatus {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  conditions?: DeploymentCondition[];
}

export interface DeploymentReadiness {
  /** The controller has seen the current spec. */
  observed: boolean;
  /** Every desired replica is updated and available, and no old replica remains. */
  complete: boolean;
  desired: number;
  updatedAvailable: number;
  failed?: string;
}

export function deploymentReadiness(deployment: KubeObject): DeploymentReadiness {
  const metadata = deployment.metadata as { generation?: number };
  const spec = (deployment.spec ?? {}) as { replicas?: number };
  const status = (deployment.status ?? {}) as DeploymentStatus;
  const desired = spec.replicas ?? 1;
  const observed = (status.observedGeneration ?? 0) >= (metadata.generation ?? 1);
  const updated = status.updatedReplicas ?? 0;
  const available = status.availableReplicas ?? 0;
  const total = status.replicas ?? 0;
  const complete = observed && updated >= desired && available >= desired && total <= updated;
  const failed = observed ? failureOf(status.conditions ?? []) : undefined;
  return { observed, complete, desired, updatedAvailable: observed ? Math.min(updated, available) : 0, ...(failed ? { failed } : {}) };
}

function failureOf(conditions: DeploymentCondition[]): string | undefined {
  for (const c of conditions) {
    if (c.type === 'Progressing' && c.status === 'False' && c.reason === 'ProgressDeadlineExceeded') {
      return `ProgressDeadlineExceeded: ${c.message ?? 'the Deployment did not progress in time'}`;
    }
    if (c.type === 'ReplicaFailure' && c.status === 'True') {
      return `${c.reason ?? 'ReplicaFailure'}: ${c.message ?? 'pods could not be created'}`;
    }
  }
  return undefined;
}

/**
 * The TrackStatus the rollout core reads. `replicas` is the track's declared size (its TrackSpec); in replica-
 * ratio canaries a track runs at a share of it, so a Deployment complete at its current scale counts as
 * ready at the declared size, and a partial one proportionally.
 */
export function trackStatusOf(deployment: KubeObject): TrackStatus {
  const declared = trackSpecOf(deployment)?.replicas ?? ((deployment.spec as { replicas?: number } | undefined)?.replicas ?? 0);
  const digest = deployment.metadata.annotations?.[ANNOTATIONS.digest] ?? '';
  const r = deploymentReadiness(deployment);
  let readyReplicas: number;
  if (r.complete) readyReplicas = declared;
  else if (r.desired === 0) readyReplicas = 0;
  else readyReplicas = Math.min(declared - 1, Math.floor((r.updatedAvailable * declared) / r.desired));
  return { digest, replicas: declared, readyReplicas: Math.max(0, readyReplicas), ...(r.failed ? { failed: r.failed } : {}) };
}
