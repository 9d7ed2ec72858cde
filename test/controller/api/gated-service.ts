/**
 * A service repo whose first stage waits until the test releases its commit (creates `<gates>/<commit>`), so
 * tests see a job running for as long as they need, without timing anything.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServiceRepo, type ServiceRepo } from '../../support/fixtures/service-repo.js';

export interface GatedService {
  repo: ServiceRepo;
  gates: string;
  /** A new commit (each builds to a different image). */
  commit(label: string): Promise<string>;
  release(commit: string): void;
}

export async function gatedService(dir: string): Promise<GatedService> {
  const gates = join(dir, 'gates');
  mkdirSync(gates, { recursive: true });
  const pipeline = [
    'apiVersion: slipway.dev/v1',
    'kind: Pipeline',
    'metadata:',
    '  name: gated',
    'spec:',
    '  stages:',
    '    - name: wait',
    `      command: 'while [ ! -e "${gates}/$SLIPWAY_COMMIT" ]; do sleep 0.05; done; echo released'`,
    '      timeout: 3m',
    '    - name: build',
    "      command: 'mkdir -p dist && cp server.js package.json dist/'",
    '      timeout: 1m',
    '  image:',
    '    context: dist',
    '    entrypoint: [node, server.js]',
    '',
  ].join('\n');
  const repo = await createServiceRepo({ dir: join(dir, 'gated'), pipeline });
  return {
    repo,
    gates,
    commit: (label) => repo.commitFiles({ 'LABEL': `${label}\n` }, `label ${label}`),
    release: (commit) => writeFileSync(join(gates, commit), ''),
  };
}
