/**
 * Persisted controller state: one JSON file per service and per environment, each replaced atomically,
 * and one append-only audit log. A controller killed at any instant finds either the record before a
 * transition or the one after it, together with the intents that transition still has to apply.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readJson, writeFileAtomic } from './atomic.js';
import type { EnvironmentRecord, ServiceRecord } from '../reconcile/types.js';

const NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

function checkName(kind: string, name: string): string {
  // Names come from the environments repo and become path segments: never let one climb out.
  if (!NAME.test(name)) throw new Error(`${kind} name "${name}" is not a valid name`);
  return name;
}

const servicePath = (dir: string, environment: string, service: string): string =>
  join(dir, 'environments', checkName('environment', environment), 'services', `${checkName('service', service)}.json`);

const environmentPath = (dir: string, environment: string): string => join(dir, 'environments', checkName('environment', environment), 'environment.json');

/**
 * No private members on purpose: anything with these methods is a StateStore to the Reconciler (the records
 * kept in ConfigMaps by controller/targets/kubernetes' createClusterRecordStore, for one).
 */
export class StateStore {
  constructor(readonly dir: string) {}

  async loadService(environment: string, service: string): Promise<ServiceRecord | undefined> {
    return readJson<ServiceRecord>(servicePath(this.dir, environment, service));
  }

  async saveService(record: ServiceRecord): Promise<void> {
    await writeFileAtomic(servicePath(this.dir, record.environment, record.service), `${JSON.stringify(record, null, 2)}\n`);
  }

  async removeService(environment: string, service: string): Promise<void> {
    await rm(servicePath(this.dir, environment, service), { force: true });
  }

  async listServices(environment: string): Promise<string[]> {
    try {
      const names = await readdir(join(this.dir, 'environments', checkName('environment', environment), 'services'));
      return names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async listEnvironments(): Promise<string[]> {
    try {
      return (await readdir(join(this.dir, 'environments'))).filter((n) => NAME.test(n)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async loadEnvironment(environment: string): Promise<EnvironmentRecord | undefined> {
    return readJson<EnvironmentRecord>(environmentPath(this.dir, environment));
  }

  async saveEnvironment(record: EnvironmentRecord): Promise<void> {
    await writeFileAtomic(environmentPath(this.dir, record.environment), `${JSON.stringify(record, null, 2)}\n`);
  }
}
