/**
 * Rollout state kept on the cluster: one ConfigMap per environment (`slipway-rollouts-<environment>`), one key
 * per service holding the state as JSON. A restarted controller, or the replica that takes over a shard,
 * loads it and resumes at the same step.
 *
 * Writes are compare-and-swap: `save` names the value it loaded; if another replica changed that service's
 * state since, the save is refused (STATE_CONFLICT, waiting) instead of overwriting it. Concurrent writes to
 * different services of one environment retry on the ConfigMap's resourceVersion.
 */
import { SlipwayError } from '../../../lib/errors.js';
import type { ServiceRef } from '../types.js';
import { isApiStatus, type KubeClient } from './client.js';
import { LABELS, MANAGER_VALUE } from './objects.js';

export interface StoredState<T> {
  state: T;
  /** Opaque: pass back to `save` as the expected current value. */
  version: string;
}

export interface RolloutStateStore<T> {
  load(ref: ServiceRef): Promise<StoredState<T> | undefined>;
  /** Write `state` if the stored value is still `expected` (undefined: nothing stored yet). Returns the new version. */
  save(ref: ServiceRef, state: T, expected: string | undefined): Promise<string>;
  remove(ref: ServiceRef): Promise<void>;
}

interface ConfigMap {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

export function stateConfigMapName(environment: string): string {
  return `slipway-rollouts-${environment}`;
}

export function createConfigMapStateStore<T>(options: { client: KubeClient; namespace: string; maxRetries?: number }): RolloutStateStore<T> {
  const { client, namespace } = options;
  const maxRetries = options.maxRetries ?? 5;
  const refOf = (environment: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', name: stateConfigMapName(environment), namespace });
  const read = async (environment: string) => (await client.get(refOf(environment))) as ConfigMap | undefined;

  async function update(ref: ServiceRef, expected: string | undefined, next: string | undefined): Promise<void> {
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      const current = await read(ref.environment);
      const stored = current?.data?.[ref.service];
      if (stored !== expected) {
        throw new SlipwayError(
          'STATE_CONFLICT',
          `rollout state of ${ref.environment}/${ref.service} changed since it was read (another controller replica?): reload and decide again`,
          'waiting',
          { environment: ref.environment, service: ref.service },
        );
      }
      const data = { ...(current?.data ?? {}) };
      if (next === undefined) delete data[ref.service];
      else data[ref.service] = next;
      const body: ConfigMap = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: stateConfigMapName(ref.environment),
          namespace,
          labels: { [LABELS.managedBy]: MANAGER_VALUE, [LABELS.environment]: ref.environment },
          ...(current?.metadata.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}),
        },
        data,
      };
      try {
        if (current) await client.replace(body as never);
        else await client.create(body as never);
        return;
      } catch (err) {
        if (!isApiStatus(err, 409)) throw err;
        // Another service's state in the same ConfigMap moved first: read again and retry.
      }
    }
    throw new SlipwayError('STATE_CONFLICT', `could not write rollout state of ${ref.environment}/${ref.service} after ${maxRetries + 1} attempts`, 'waiting');
  }

  return {
    async load(ref) {
      const raw = (await read(ref.environment))?.data?.[ref.service];
      if (raw === undefined) return undefined;
      try {
        return { state: JSON.parse(raw) as T, version: raw };
      } catch {
        throw new SlipwayError(
          'STATE_CORRUPT',
          `ConfigMap ${namespace}/${stateConfigMapName(ref.environment)} key ${ref.service} is not JSON: fix or delete the key`,
          'stalling',
        );
      }
    },
    async save(ref, state, expected) {
      const next = JSON.stringify(state);
      await update(ref, expected, next);
      return next;
    },
    async remove(ref) {
      const current = await read(ref.environment);
      const stored = current?.data?.[ref.service];
      if (stored === undefined) return;
      await update(ref, stored, undefined);
    },
  };
}
