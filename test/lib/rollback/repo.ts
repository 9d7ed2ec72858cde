/** An environments repository on disk, built and inspected with the real `git` CLI. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const DIGEST = {
  a: `sha256:${'a'.repeat(64)}`,
  b: `sha256:${'b'.repeat(64)}`,
  c: `sha256:${'c'.repeat(64)}`,
  d: `sha256:${'d'.repeat(64)}`,
};

export function serviceYaml(name: string, digest: string, opts: { replicas?: number; repository?: string } = {}): string {
  return [
    `# ${name}: owned by the payments team`,
    'apiVersion: slipway.dev/v1',
    'kind: Service',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    '  image:',
    `    repository: ${opts.repository ?? `127.0.0.1:5000/${name}`}`,
    '    # bumped by slipway promotions',
    `    digest: ${digest}`,
    `  replicas: ${opts.replicas ?? 2} # two for failover`,
    '  port: 8080',
    '',
  ].join('\n');
}

export class TestRepo {
  readonly root: string;
  readonly dir: string;
  private readonly env: NodeJS.ProcessEnv;
  private tick = 0;

  constructor() {
    this.root = mkdtempSync(join(tmpdir(), 'slipway-rollback-'));
    this.dir = join(this.root, 'envs');
    mkdirSync(this.dir);
    this.env = {
      PATH: process.env.PATH,
      HOME: this.root,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'Pat Person',
      GIT_AUTHOR_EMAIL: 'pat@example.test',
      GIT_COMMITTER_NAME: 'Pat Person',
      GIT_COMMITTER_EMAIL: 'pat@example.test',
    };
    this.git('init', '-q', '-b', 'main');
  }

  /** Run git in the repo (or `cwd`) with a fixed identity and strictly increasing dates. */
  git(...args: string[]): string {
    return this.gitIn(this.dir, ...args);
  }

  gitIn(cwd: string, ...args: string[]): string {
    const date = `${1_767_225_600 + this.tick++ * 60} +0000`;
    return execFileSync('git', ['-c', 'commit.gpgsign=false', ...args], {
      cwd,
      env: { ...this.env, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  write(path: string, text: string, dir = this.dir): void {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }

  read(path: string, dir = this.dir): string {
    return readFileSync(join(dir, path), 'utf8');
  }

  /** Write files and commit them; returns the commit sha. */
  commit(message: string, files: Record<string, string>, dir = this.dir): string {
    for (const [path, text] of Object.entries(files)) this.write(path, text, dir);
    this.gitIn(dir, 'add', '-A');
    this.gitIn(dir, 'commit', '-q', '-m', message);
    return this.gitIn(dir, 'rev-parse', 'HEAD').trim();
  }

  head(ref = 'main', dir = this.dir): string {
    return this.gitIn(dir, 'rev-parse', ref).trim();
  }

  /** A throwaway clone to run `git revert` in, for comparison. */
  clone(): string {
    const target = mkdtempSync(join(this.root, 'clone-'));
    execFileSync('git', ['clone', '-q', this.dir, target], { env: this.env });
    return target;
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** The usual history: checkout at A, promoted to B (the bad one), then an unrelated change to cart. */
export function standardHistory(repo: TestRepo): { base: string; bump: string; later: string } {
  const base = repo.commit('Add checkout and cart', {
    'staging/environment.yaml': 'apiVersion: slipway.dev/v1\nkind: Environment\nmetadata:\n  name: staging\nspec:\n  target:\n    type: local\n',
    'staging/services/checkout.yaml': serviceYaml('checkout', DIGEST.a),
    'staging/services/cart.yaml': serviceYaml('cart', DIGEST.c),
  });
  const bump = repo.commit(`Promote checkout to ${DIGEST.b.slice(0, 19)}`, { 'staging/services/checkout.yaml': serviceYaml('checkout', DIGEST.b) });
  const later = repo.commit('Promote cart', { 'staging/services/cart.yaml': serviceYaml('cart', DIGEST.d) });
  return { base, bump, later };
}
