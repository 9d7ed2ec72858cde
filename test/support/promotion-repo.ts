/**
 * A real environments repository for promotion tests, made with the `git` CLI: slipway.yaml with staging
 * and production, environment files, a commented service file, the service template, and optionally a
 * freeze file and quarantine list. `bare: true` gives a bare repository plus a clone a person works in.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DEFAULT_BUILDER_ID } from '../../lib/provenance/index.js';
import type { DigestChange, Verifier } from '../../lib/gitprovider/index.js';

export const digestOf = (c: string) => `sha256:${c.repeat(64).slice(0, 64)}`;
export const OLD_DIGEST = digestOf('1');

export interface RepoOptions {
  stagingAutoMerge?: boolean;
  productionApprovals?: number;
  productionFreeze?: string;
  quarantine?: string;
  services?: string[];
  /** PEM of the trusted key `builder` (keys/builder.pub); default: a placeholder no signature matches. */
  publicKeyPem?: string;
  builders?: string[];
  /** The image each environment's `web` runs (default localhost:5000/web @ OLD_DIGEST). */
  images?: Partial<Record<'staging' | 'production', { repository: string; digest: string }>>;
}

export interface TestRepo {
  root: string;
  /** Where Slipway is pointed: the bare repository, or the working tree of a non-bare one. */
  repo: string;
  /** A working clone for a person (same as `repo` when not bare). */
  work: string;
  git(args: string[], cwd?: string): string;
  cleanup(): void;
}

const ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Pat Person',
  GIT_AUTHOR_EMAIL: 'pat@example.com',
  GIT_COMMITTER_NAME: 'Pat Person',
  GIT_COMMITTER_EMAIL: 'pat@example.com',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

export function serviceYaml(name: string, digest = OLD_DIGEST, repository = `localhost:5000/${name}`): string {
  return [
    `# ${name}: owned by the storefront team`,
    'apiVersion: slipway.dev/v1',
    'kind: Service',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    '  image:',
    `    repository: ${repository}   # where the builder pushes`,
    `    digest: ${digest}`,
    '  replicas: 2 # two is enough here',
    '  port: 8080',
    '',
  ].join('\n');
}

function envYaml(autoMerge: boolean, approvals: number): string {
  return `apiVersion: slipway.dev/v1\nkind: Environment\nmetadata:\n  name: env\nspec:\n  target:\n    type: local\n  autoMerge: ${autoMerge}\n  approvals:\n    required: ${approvals}\n`;
}

export function makeEnvRepo(options: RepoOptions & { bare?: boolean } = {}): TestRepo {
  const root = mkdtempSync(join(tmpdir(), 'slipway-promotion-'));
  const work = join(root, 'work');
  const git = (args: string[], cwd = work) => execFileSync('git', args, { cwd, env: ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  mkdirSync(work);
  git(['init', '-q', '-b', 'main']);
  const files: Record<string, string> = {
    'slipway.yaml': [
      'apiVersion: slipway.dev/v1',
      'kind: Slipway',
      'metadata:',
      '  name: shop',
      'spec:',
      '  environments: [staging, production]',
      '  trust:',
      '    keys:',
      '      - name: builder',
      '        publicKey: keys/builder.pub',
      `    builders: ${JSON.stringify(options.builders ?? [DEFAULT_BUILDER_ID])}`,
      '    sources:',
      '      - repo: "https://git.example/shop/*"',
      '',
    ].join('\n'),
    'keys/builder.pub': options.publicKeyPem ?? '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n',
    'staging/environment.yaml': envYaml(options.stagingAutoMerge ?? true, 0),
    'production/environment.yaml': envYaml(false, options.productionApprovals ?? 0),
    'templates/service.yaml': serviceYaml('example', digestOf('0')).replace('# example: owned by the storefront team', '# Created by Slipway from templates/service.yaml'),
  };
  for (const s of options.services ?? ['web']) {
    for (const env of ['staging', 'production'] as const) {
      const image = s === 'web' ? options.images?.[env] : undefined;
      files[`${env}/services/${s}.yaml`] = serviceYaml(s, image?.digest, image?.repository);
    }
  }
  if (options.productionFreeze) files['production/freeze.yaml'] = options.productionFreeze;
  if (options.quarantine) files['quarantine.yaml'] = options.quarantine;
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(work, path)), { recursive: true });
    writeFileSync(join(work, path), text);
  }
  git(['add', '-A']);
  git(['commit', '-q', '-m', 'Initial environments']);
  let repo = work;
  if (options.bare) {
    repo = join(root, 'envs.git');
    git(['clone', '-q', '--bare', work, repo], root);
    git(['remote', 'add', 'origin', repo]);
    git(['fetch', '-q', 'origin']);
    git(['branch', '-q', '--set-upstream-to=origin/main', 'main']);
  }
  return { root, repo, work, git, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** Where a proposed digest was built from, in provider tests. */
export const PROPOSAL_SOURCE = { repo: 'https://git.example/shop/web', ref: 'refs/heads/main', commit: 'f'.repeat(40) };

/** A verifier that accepts every digest as built from PROPOSAL_SOURCE. */
export const acceptingVerifier: Verifier = async (req) => ({
  ok: true,
  provenance: { digest: req.digest, builderId: 'b', sourceRepo: PROPOSAL_SOURCE.repo, sourceRef: PROPOSAL_SOURCE.ref, sourceCommit: PROPOSAL_SOURCE.commit, keyName: 'builder' },
});

export const fixedClock = () => new Date('2026-11-23T10:00:00Z');

/** A digest change of `web` in staging, as the builder proposes it. */
export function digestChange(digest: string, overrides: Partial<DigestChange> = {}): DigestChange {
  return {
    environment: 'staging',
    service: 'web',
    digest,
    repository: 'localhost:5000/web',
    source: PROPOSAL_SOURCE,
    author: { name: 'slipway-builder', email: 'builder@example.com' },
    ...overrides,
  };
}
