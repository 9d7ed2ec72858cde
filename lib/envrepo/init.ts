/**
 * `slipway init`: a new environments repository from the example in `environments/`, as a git
 * repository with one commit, trusting the default signing key (made under `$SLIPWAY_HOME/keys/` if
 * missing, never overwritten, never inside the repository).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import git from 'isomorphic-git';
import { parseDocument } from 'yaml';
import { SlipwayError } from '../errors.js';
import { defaultKeyPaths, ensureDefaultKey, publicKeyFingerprint, DEFAULT_KEY_NAME } from '../keys/index.js';
import { formatProblem } from '../../schemas/index.js';
import { loadDesiredState } from './load.js';
import { openRepo } from './repo.js';

export interface InitResult {
  dir: string;
  commit: string;
  branch: string;
  files: string[];
  key: { name: string; created: boolean; privateKeyPath: string; publicKeyFile: string; fingerprint: string };
}

/** The `environments/` example shipped with Slipway (found from this file, in sources or in dist/). */
export function exampleEnvironmentsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'environments');
    if (fs.existsSync(join(dir, 'package.json')) && fs.existsSync(join(candidate, 'slipway.yaml'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new SlipwayError('EXAMPLE_NOT_FOUND', 'cannot find the example environments/ directory of this Slipway install', 'generic');
    dir = parent;
  }
}

/** A valid metadata.name from a directory name: `My Envs` → `my-envs`. */
export function repoNameFrom(dir: string): string {
  const name = basename(resolve(dir))
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return name || 'environments';
}

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) out.push(relative(root, full).split(sep).join('/'));
    }
  };
  walk(root);
  return out.sort();
}

function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep) && rel !== '..');
}

function gitIdentity(env: NodeJS.ProcessEnv): { name: string; email: string } {
  const fromGit = (key: string): string | undefined => {
    try {
      return execFileSync('git', ['config', '--get', key], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
    } catch {
      return undefined;
    }
  };
  return {
    name: env.GIT_AUTHOR_NAME || fromGit('user.name') || 'slipway',
    email: env.GIT_AUTHOR_EMAIL || fromGit('user.email') || 'slipway@localhost',
  };
}

/**
 * Create the environments repository at `dir` (absent or an empty directory). Refuses anything else;
 * on failure, removes what it created, so a failed init leaves nothing half-made.
 */
export async function initEnvironmentsRepo(opts: { dir: string; env?: NodeJS.ProcessEnv; templateDir?: string; branch?: string; now?: Date }): Promise<InitResult> {
  const env = opts.env ?? process.env;
  const dir = resolve(opts.dir);
  const branch = opts.branch ?? 'main';
  const templateDir = opts.templateDir ?? exampleEnvironmentsDir();

  let created = false;
  if (fs.existsSync(dir)) {
    if (!fs.statSync(dir).isDirectory()) {
      throw new SlipwayError('TARGET_EXISTS', `${dir} exists and is not a directory; pass a new directory to \`slipway init\``, 'stalling', { dir });
    }
    const entries = fs.readdirSync(dir);
    if (entries.length > 0) {
      const what = entries.includes('.git') ? 'is already a git repository' : `is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''})`;
      throw new SlipwayError('TARGET_EXISTS', `${dir} ${what}; slipway init never overwrites, pass a new or empty directory`, 'stalling', { dir });
    }
  }
  const keyPaths = defaultKeyPaths(env);
  if (isInside(keyPaths.dir, dir)) {
    throw new SlipwayError(
      'KEY_INSIDE_REPO',
      `the signing key directory ${keyPaths.dir} would be inside the new repository ${dir}; set SLIPWAY_HOME outside it`,
      'stalling',
      { dir, keyDir: keyPaths.dir },
    );
  }

  try {
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { recursive: true });
      created = true;
    }
    fs.cpSync(templateDir, dir, { recursive: true });

    const ensured = ensureDefaultKey({ env });
    const publicKeyFile = `keys/${DEFAULT_KEY_NAME}.pub`;
    fs.mkdirSync(join(dir, 'keys'), { recursive: true });
    fs.writeFileSync(join(dir, publicKeyFile), ensured.key.publicKeyPem);

    // Name the repo after its directory and trust exactly the key just ensured; comments stay.
    const slipwayPath = join(dir, 'slipway.yaml');
    const doc = parseDocument(fs.readFileSync(slipwayPath, 'utf8'));
    doc.setIn(['metadata', 'name'], repoNameFrom(dir));
    const keys = doc.getIn(['spec', 'trust', 'keys']) as { items?: unknown[] } | undefined;
    if (!keys?.items?.length) doc.setIn(['spec', 'trust', 'keys'], [{ name: DEFAULT_KEY_NAME, publicKey: publicKeyFile }]);
    else {
      doc.setIn(['spec', 'trust', 'keys', 0, 'name'], DEFAULT_KEY_NAME);
      doc.setIn(['spec', 'trust', 'keys', 0, 'publicKey'], publicKeyFile);
    }
    fs.writeFileSync(slipwayPath, doc.toString());

    await git.init({ fs, dir, defaultBranch: branch });
    const files = listFiles(dir).filter((f) => !f.startsWith('.git/'));
    await git.add({ fs, dir, filepath: files });
    const author = { ...gitIdentity(env), timestamp: Math.floor((opts.now ?? new Date()).getTime() / 1000), timezoneOffset: 0 };
    const commit = await git.commit({
      fs,
      dir,
      message: `Create environments repository with slipway init\n\nTrusts signing key ${DEFAULT_KEY_NAME} (${publicKeyFingerprint(ensured.key.publicKeyPem).slice(0, 16)}).\n`,
      author,
      committer: author,
    });

    // The first commit must be one the controller accepts.
    const result = await loadDesiredState({ repo: await openRepo({ repo: dir }), commit });
    if (!result.ok) {
      throw new SlipwayError('INIT_INVALID', `the new repository does not validate:\n${result.problems.map(formatProblem).join('\n')}`, 'generic');
    }
    return {
      dir,
      commit,
      branch,
      files,
      key: {
        name: DEFAULT_KEY_NAME,
        created: ensured.created,
        privateKeyPath: ensured.paths.privateKeyPath,
        publicKeyFile,
        fingerprint: publicKeyFingerprint(ensured.key.publicKeyPem),
      },
    };
  } catch (err) {
    // Leave nothing half-made: remove what this init wrote (the key under SLIPWAY_HOME stays; it is reusable).
    if (created) fs.rmSync(dir, { recursive: true, force: true });
    else if (fs.existsSync(dir)) for (const entry of fs.readdirSync(dir)) fs.rmSync(join(dir, entry), { recursive: true, force: true });
    throw err;
  }
}
