/**
 * What the kube-controller-manager and kubelets would do on a real cluster, done by the tests on a bare
 * apiserver: write a Deployment's status (observedGeneration, replica counts, conditions) via the status
 * subresource. Test names say "simulated readiness" where they rely on it.
 */
import type { KubeClient, KubeObject } from '../../../controller/targets/kubernetes/index.js';

export interface SimulatedStatus {
  /** Ready replicas out of spec.replicas (default: all). */
  ready?: number;
  /** Leave observedGeneration behind the spec (the controller has not seen it yet). */
  stale?: boolean;
  /** Mark the progress deadline as exceeded with this message. */
  deadlineExceeded?: string;
}

export async function simulateDeploymentStatus(client: KubeClient, namespace: string, name: string, sim: SimulatedStatus = {}): Promise<KubeObject> {
  const live = await client.get<KubeObject>({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace });
  if (!live) throw new Error(`no Deployment ${namespace}/${name} to set status on`);
  const desired = (live.spec as { replicas?: number }).replicas ?? 1;
  const ready = Math.min(desired, sim.ready ?? desired);
  const generation = (live.metadata as { generation?: number }).generation ?? 1;
  const now = new Date().toISOString();
  const conditions = [
    { type: 'Available', status: ready >= desired ? 'True' : 'False', reason: 'MinimumReplicasAvailable', lastUpdateTime: now, lastTransitionTime: now },
    sim.deadlineExceeded
      ? { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: sim.deadlineExceeded, lastUpdateTime: now, lastTransitionTime: now }
      : { type: 'Progressing', status: 'True', reason: ready >= desired ? 'NewReplicaSetAvailable' : 'ReplicaSetUpdated', lastUpdateTime: now, lastTransitionTime: now },
  ];
  const status = {
    observedGeneration: sim.stale ? generation - 1 : generation,
    replicas: desired,
    updatedReplicas: desired,
    readyReplicas: ready,
    availableReplicas: ready,
    ...(ready < desired ? { unavailableReplicas: desired - ready } : {}),
    conditions,
  };
  return client.replaceStatus({ ...live, status } as KubeObject, 'deployments');
}

export async function ensureNamespace(client: KubeClient, name: string): Promise<void> {
  await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}
