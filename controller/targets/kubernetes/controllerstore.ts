/**
 * The controller's records (what controller/state's StateStore keeps in files) kept on the cluster instead, so
 * a controller pod that restarts, or the replica that takes over a shard, resumes where the last one stopped:
 * one ConfigMap per environment, `slipway-controller-<environment>`, key `environment.json` for the
 * environment record and `service.<name>.json` per service. Writes retry on the ConfigMap's resourceVersion,
 * so writes to different services of one environment never lose each other.
 *
 * Same methods as StateStore (loadService, saveService, removeService, listServices, listEnvironments,
 * loadEnvironment, saveEnvironment).
 */
import { SlipwayError } from '../../../lib/errors.js';
import { isApiStatus, type KubeClient } from './client.js';
import { LABELS, MANAGER_VALUE } from './objects.js';

const NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const STATE_LABEL = 'slipway.dev/state';
const SCOPE_LABEL = 'slipway.dev/scope';

interface ConfigMap {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

export interface ControllerRecordStore<S extends { environment: string; service: string }, E extends { environment: string }> {
  readonly dir: string;
  loadService(environment: string, service: string): Promise<S | undefined>;
  saveService(record: S): Promise<void>;
  removeService(environment: string, service: string): Promise<void>;
  listServices(environment: string): Promise<string[]>;
  listEnvironments(): Promise<string[]>;
  loadEnvironment(environment: string): Promise<E | undefined>;
  saveEnvironment(record: E): Promise<void>;
}

/** `slipway-controller-<environment>`, or `slipway-controller-<environment>.<scope>` for a store scoped to one cluster. */
export function controllerConfigMapName(environment: string, scope?: string): string {
  return `slipway-controller-${environment}${scope ? `.${scope}` : ''}`;
}

function checkName(kind: string, name: string): string {
  if (!NAME.test(name)) throw new SlipwayError('BAD_NAME', `${kind} name "${name}" is not a valid name`, 'stalling');
  return name;
}

const serviceKey = (service: string) => `service.${checkName('service', service)}.json`;
const ENVIRONMENT_KEY = 'environment.json';

export function createClusterRecordStore<S extends { environment: string; service: string }, E extends { environment: string }>(options: {
  client: KubeClient;
  namespace: string;
  /** Keep a separate set of records per scope (e.g. per cluster, when each environment/cluster pair is its own shard). */
  scope?: string;
  maxRetries?: number;
}): ControllerRecordStore<S, E> {
  const { client, namespace } = options;
  const scope = options.scope === undefined ? undefined : checkName('scope', options.scope);
  const maxRetries = options.maxRetries ?? 8;
  const ref = (environment: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', name: controllerConfigMapName(checkName('environment', environment), scope), namespace });
  const read = async (environment: string) => (await client.get(ref(environment))) as ConfigMap | undefined;

  function parse<T>(environment: string, key: string, raw: string | undefined): T | undefined {
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(raw) as T;
    } catch {
      throw new SlipwayError('STATE_CORRUPT', `ConfigMap ${namespace}/${controllerConfigMapName(environment, scope)} key ${key} is not JSON: fix or delete the key`, 'stalling');
    }
  }

  async function mutate(environment: string, change: (data: Record<string, string>) => boolean): Promise<void> {
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      const current = await read(environment);
      const data = { ...(current?.data ?? {}) };
      if (!change(data)) return;
      const body: ConfigMap = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: controllerConfigMapName(environment, scope),
          namespace,
          labels: {
            [LABELS.managedBy]: MANAGER_VALUE,
            [LABELS.environment]: environment,
            [STATE_LABEL]: 'controller',
            ...(scope ? { [SCOPE_LABEL]: scope } : {}),
          },
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
      }
    }
    throw new SlipwayError('STATE_CONFLICT', `could not write controller state of ${environment} after ${maxRetries + 1} attempts`, 'waiting');
  }

  return {
    dir: `configmap://${namespace}/slipway-controller-*${scope ? `.${scope}` : ''}`,
    async loadService(environment, service) {
      const key = serviceKey(service);
      return parse<S>(environment, key, (await read(environment))?.data?.[key]);
    },
    async saveService(record) {
      const key = serviceKey(record.service);
      const value = JSON.stringify(record);
      await mutate(record.environment, (data) => {
        if (data[key] === value) return false;
        data[key] = value;
        return true;
      });
    },
    async removeService(environment, service) {
      const key = serviceKey(service);
      await mutate(environment, (data) => {
        if (!(key in data)) return false;
        delete data[key];
        return true;
      });
    },
    async listServices(environment) {
      const data = (await read(environment))?.data ?? {};
      return Object.keys(data)
        .filter((k) => k.startsWith('service.') && k.endsWith('.json'))
        .map((k) => k.slice('service.'.length, -'.json'.length))
        .sort();
    },
    async listEnvironments() {
      const selector = `${STATE_LABEL}=controller,${scope ? `${SCOPE_LABEL}=${scope}` : `!${SCOPE_LABEL}`}`;
      const maps = await client.list<ConfigMap & { metadata: { name: string } }>('v1', 'ConfigMap', namespace, selector);
      return maps
        .map((m) => m.metadata.labels?.[LABELS.environment] ?? '')
        .filter((n) => NAME.test(n))
        .sort();
    },
    async loadEnvironment(environment) {
      return parse<E>(environment, ENVIRONMENT_KEY, (await read(environment))?.data?.[ENVIRONMENT_KEY]);
    },
    async saveEnvironment(record) {
      const value = JSON.stringify(record);
      await mutate(record.environment, (data) => {
        if (data[ENVIRONMENT_KEY] === value) return false;
        data[ENVIRONMENT_KEY] = value;
        return true;
      });
    },
  };
}
