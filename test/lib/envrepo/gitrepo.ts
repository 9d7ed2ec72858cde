/** Real git repositories in temp dirs, made with the git CLI (so the loader proves it reads what git writes). */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const EXAMPLE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'environments');

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

export function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, env: GIT_ENV, encoding: 'utf8' }).trim();
}

export interface TestRepo {
  dir: string;
  /** Write (string) or delete (null) files, commit, and return the new commit id. */
  commit(changes: Record<string, string | null>, message?: string): string;
  read(path: string): string;
  cleanup(): void;
}

/** A git repository holding a copy of the example environments repo, committed once. */
export function exampleRepo(): TestRepo & { first: string } {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-envrepo-'));
  cpSync(EXAMPLE_DIR, dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'example');
  const repo = {
    dir,
    first: git(dir, 'rev-parse', 'HEAD'),
    commit(changes: Record<string, string | null>, message = 'change') {
      for (const [path, text] of Object.entries(changes)) {
        const full = join(dir, path);
        if (text === null) rmSync(full, { force: true, recursive: true });
        else {
          mkdirSync(dirname(full), { recursive: true });
          writeFileSync(full, text);
        }
      }
      git(dir, 'add', '-A');
      git(dir, 'commit', '-q', '--allow-empty', '-m', message);
      return git(dir, 'rev-parse', 'HEAD');
    },
    read(path: string) {
      return readFileSync(join(dir, path), 'utf8');
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return repo;
}

/** Every file path under `dir`, repo-relative, excluding .git. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      if (name === '.git') continue;
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.push(relative(dir, full));
    }
  };
  walk(dir);
  return out.sort();
}
