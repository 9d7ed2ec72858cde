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

export class StateStore {
  constructor(readonly dir: string) {}

  private servicePath(environment: string, service: string): string {
    return join(this.dir, 'environments', checkName('environment', environment), 'services', `${checkName('service', service)}.json`);
  }

  private environmentPath(environment: string): string {
    return join(this.dir, 'environments', checkName('environment', environment), 'environment.json');
  }

  async loadService(environment: string, service: string): Promise<ServiceRecord | undefined> {
    return readJson<ServiceRecord>(this.servicePath(environment, service));
  }

  async saveService(record: ServiceRecord): Promise<void> {
    await writeFileAtomic(this.servicePath(record.environment, record.service), `${JSON.stringify(record, null, 2)}\n`);
  }

  async removeService(environment: string, service: string): Promise<void> {
    await rm(this.servicePath(environment, service), { force: true });
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
    return readJson<EnvironmentRecord>(this.environmentPath(environment));
  }

  async saveEnvironment(record: EnvironmentRecord): Promise<void> {
    await writeFileAtomic(this.environmentPath(record.environment), `${JSON.stringify(record, null, 2)}\n`);
  }
}
