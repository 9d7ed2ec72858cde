/**
 * A real environments repository in a temp dir, written and committed with the git CLI (as a person
 * would), for the controller to follow.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import type { Strategy } from '../../schemas/index.js';

export const digestOf = (c: string): string => `sha256:${c.repeat(64).slice(0, 64)}`;

export interface ServiceOptions {
  digest: string;
  strategy?: Strategy;
  replicas?: number;
  port?: number;
  env?: Record<string, string>;
  repository?: string;
}

export function serviceYaml(name: string, o: ServiceOptions): string {
  return stringify({
    apiVersion: 'slipway.dev/v1',
    kind: 'Service',
    metadata: { name },
    spec: {
      image: { repository: o.repository ?? `oci:/images/${name}`, digest: o.digest },
      replicas: o.replicas ?? 1,
      port: o.port ?? 8080,
      ...(o.env ? { env: o.env } : {}),
      ...(o.strategy ? { strategy: o.strategy } : {}),
    },
  });
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Test Person',
  GIT_AUTHOR_EMAIL: 'person@example.test',
  GIT_COMMITTER_NAME: 'Test Person',
  GIT_COMMITTER_EMAIL: 'person@example.test',
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: tmpdir(),
};

export class EnvRepo {
  private constructor(readonly dir: string) {}

  static create(options: { environments?: string[]; services?: Record<string, ServiceOptions> } = {}): EnvRepo {
    const dir = mkdtempSync(join(tmpdir(), 'slipway-envrepo-'));
    const repo = new EnvRepo(dir);
    repo.git('init', '-q', '-b', 'main');
    const environments = options.environments ?? ['staging'];
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    repo.write('keys/ci.pub', publicKey.export({ type: 'spki', format: 'pem' }).toString());
    repo.write(
      'slipway.yaml',
      stringify({
        apiVersion: 'slipway.dev/v1',
        kind: 'Slipway',
        metadata: { name: 'test' },
        spec: {
          environments,
          trust: {
            keys: [{ name: 'ci', publicKey: 'keys/ci.pub' }],
            builders: ['https://slipway.dev/builder/v1'],
            sources: [{ repo: 'https://example.test/*' }],
          },
        },
      }),
    );
    for (const env of environments) {
      repo.write(
        `${env}/environment.yaml`,
        stringify({ apiVersion: 'slipway.dev/v1', kind: 'Environment', metadata: { name: env }, spec: { target: { type: 'local' } } }),
      );
      for (const [name, svc] of Object.entries(options.services ?? {})) repo.write(`${env}/services/${name}.yaml`, serviceYaml(name, svc));
    }
    repo.commit('Initial environments');
    return repo;
  }

  git(...args: string[]): string {
    return execFileSync('git', args, { cwd: this.dir, env: { ...process.env, ...GIT_ENV }, encoding: 'utf8' }).trim();
  }

  write(path: string, content: string): void {
    const full = join(this.dir, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, content);
  }

  remove(path: string): void {
    this.git('rm', '-q', path);
  }

  setService(env: string, name: string, options: ServiceOptions): void {
    this.write(`${env}/services/${name}.yaml`, serviceYaml(name, options));
  }

  commit(message: string): string {
    this.git('add', '-A');
    this.git('commit', '-q', '--allow-empty', '-m', message);
    return this.head();
  }

  head(): string {
    return this.git('rev-parse', 'HEAD');
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
