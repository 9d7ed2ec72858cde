/**
 * The production ports, put together once: the environments repo through lib/envrepo, provenance through
 * lib/provenance, freeze windows through lib/freeze, rollback by revert through lib/rollback, the local
 * target (processes behind a weighted proxy), and analysis over the proxy's own request log.
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { activeWindows } from '../lib/freeze/index.js';
import { createProvenanceVerifier } from '../lib/provenance/index.js';
import { createLocalRollback } from '../lib/rollback/index.js';
import { openImageStore } from '../lib/oci/index.js';
import { SlipwayError } from '../lib/errors.js';
import { homePath } from '../lib/home.js';
import { createAnalysisProvider } from './analysis/index.js';
import { createLocalTarget, type LocalTarget } from './targets/local/index.js';
import { freezeCalendar } from './gates/index.js';
import { GitEnvironmentSource } from './sync/index.js';
import { Controller } from './controller.js';
import { LocalGitProvider } from '../lib/gitprovider/index.js';
import type { RollbackPort } from '../lib/gitprovider/types.js';

export interface LocalControllerOptions {
  repo: string;
  environments?: string[];
  stateDir?: string;
  schedule?: string;
  /** Where the local target keeps its image cache and run records (default $SLIPWAY_HOME). */
  home?: string;
  log?: (line: string) => void;
}

export interface LocalController {
  controller: Controller;
  target: LocalTarget;
  close(): Promise<void>;
}

export const freezeWindows = freezeCalendar({
  activeWindows: (windows, at) => activeWindows(windows, at).map((w) => ({ name: w.name, ...(w.reason ? { reason: w.reason } : {}), end: w.end })),
});

/** A controller on the embedded local target, with every real port. */
export async function createLocalController(options: LocalControllerOptions): Promise<LocalController> {
  const source = new GitEnvironmentSource({ location: options.repo });
  const repo = await source.envRepo();
  let rollback: RollbackPort;
  if (repo.url) {
    rollback = {
      revert: async () => {
        throw new SlipwayError(
          'ROLLBACK_UNSUPPORTED',
          `automatic revert commits need a repository on disk or a git provider; ${repo.source} is a URL: revert the change by hand`,
          'stalling',
        );
      },
    };
  } else {
    rollback = createLocalRollback({ fs, ...(repo.dir ? { dir: repo.dir } : {}), gitdir: repo.gitdir });
  }
  const verifier = createProvenanceVerifier();
  const proposals = repo.url ? undefined : new LocalGitProvider({ repo: repo.dir ?? repo.gitdir, verify: (r) => verifier.verify(r) });
  const target = createLocalTarget({ openStore: (repository) => openImageStore(repository), ...(options.home ? { home: options.home } : {}) });
  const controller = new Controller({
    source,
    targetFor: () => target,
    verifier,
    ...(proposals ? { proposals } : {}),
    freeze: freezeWindows,
    analysis: createAnalysisProvider({ requestLog: target.requestLog }),
    rollback,
    extraMetrics: [target.metricsRegistry],
    ...(options.stateDir ? { stateDir: options.stateDir } : {}),
    ...(options.environments ? { environments: options.environments } : {}),
    ...(options.schedule ? { schedule: options.schedule } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  return {
    controller,
    target,
    async close() {
      await controller.stop();
      await target.close();
    },
  };
}

/** A secret under $SLIPWAY_HOME/controller (made once, 0600), unless the environment variable names one. */
export function controllerSecret(name: 'token' | 'webhook-secret', envVar: string, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[envVar];
  if (fromEnv) return fromEnv.trim();
  const file = homePath('controller', name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dirname(file), { recursive: true });
  const value = randomBytes(24).toString('base64url');
  writeFileSync(file, `${value}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return value;
}

/** Where a running controller says it listens, for `slipway status`. */
export function endpointFile(): string {
  return join(homePath('controller'), 'endpoint');
}
