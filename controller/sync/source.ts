/**
 * The environments repository read straight from git objects through isomorphic-git (never a working
 * tree), so what is applied is exactly a commit of main.
 *
 * - `head()` is one ref lookup for a repository on disk; for an http(s) remote it is one fetch of `main`
 *   into a bare mirror under $SLIPWAY_HOME, then that ref lookup.
 * - `load(commit)` validates every file of the commit. Parsed files are cached by blob id, so loading the
 *   next commit re-reads only the files that changed, while still checking that the whole commit is valid.
 * - `diff(from, to)` compares tree ids and descends only into subtrees that differ, so its cost follows
 *   what changed, not the size of the repository.
 *
 * This adapter sits behind the EnvironmentSource port; when lib/envrepo lands on main it can delegate there.
 */
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { validateFile, type FileKind, type FileKinds, type QuarantineConfig } from '../../schemas/index.js';
import { homePath } from '../../lib/home.js';
import { SlipwayError } from '../../lib/errors.js';
import type { CommitDiff, DesiredState, EnvironmentState, LoadResult, Problem, ServiceChange } from '../../lib/envrepo/types.js';
import type { EnvironmentSource } from '../reconcile/types.js';

interface TreeEntry {
  path: string;
  oid: string;
  type: 'blob' | 'tree' | 'commit';
}

type Parsed = { ok: true; value: unknown } | { ok: false; problems: Problem[] };

const MAIN = 'main';

export interface GitSourceOptions {
  /** A path to a repository on disk (bare or with a working tree) or an http(s) URL. */
  location: string;
  branch?: string;
  /** Where a remote is mirrored (default: $SLIPWAY_HOME/cache/envrepos/<hash of the URL>). */
  mirrorDir?: string;
  /** Extra headers for an http(s) remote (e.g. Authorization). */
  headers?: Record<string, string>;
}

export function isRemote(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

export class GitEnvironmentSource implements EnvironmentSource {
  readonly location: string;
  private readonly branch: string;
  private readonly gitdir: string;
  private readonly remote: boolean;
  private readonly headers: Record<string, string>;
  private readonly parsedByBlob = new Map<string, Parsed>();
  private readonly treeCache = new Map<string, TreeEntry[]>();
  private mirrorReady = false;

  constructor(options: GitSourceOptions) {
    this.location = options.location;
    this.branch = options.branch ?? MAIN;
    this.remote = isRemote(options.location);
    this.headers = options.headers ?? {};
    if (this.remote) {
      const key = createHash('sha256').update(options.location).digest('hex').slice(0, 16);
      this.gitdir = options.mirrorDir ?? homePath('cache', 'envrepos', key);
    } else {
      const dir = resolve(options.location);
      this.gitdir = fs.existsSync(join(dir, '.git')) ? join(dir, '.git') : dir;
    }
  }

  private get ref(): string {
    return this.remote ? `refs/remotes/origin/${this.branch}` : `refs/heads/${this.branch}`;
  }

  private async ensureMirror(): Promise<void> {
    if (this.mirrorReady) return;
    if (!fs.existsSync(join(this.gitdir, 'config'))) {
      await fs.promises.mkdir(this.gitdir, { recursive: true });
      await git.init({ fs, gitdir: this.gitdir, bare: true, defaultBranch: this.branch });
      await git.addRemote({ fs, gitdir: this.gitdir, remote: 'origin', url: this.location, force: true });
    }
    this.mirrorReady = true;
  }

  async head(): Promise<string> {
    try {
      if (this.remote) {
        await this.ensureMirror();
        await git.fetch({
          fs,
          http,
          gitdir: this.gitdir,
          remote: 'origin',
          ref: this.branch,
          singleBranch: true,
          tags: false,
          headers: this.headers,
        });
      }
      return await git.resolveRef({ fs, gitdir: this.gitdir, ref: this.ref });
    } catch (err) {
      throw new SlipwayError(
        'SOURCE_UNREACHABLE',
        `cannot read ${this.branch} of the environments repository ${this.location}: ${(err as Error).message}`,
        'waiting',
        { location: this.location },
        { cause: err },
      );
    }
  }

  private async tree(oid: string): Promise<TreeEntry[]> {
    const cached = this.treeCache.get(oid);
    if (cached) return cached;
    const { tree } = await git.readTree({ fs, gitdir: this.gitdir, oid });
    const entries = tree.map((e) => ({ path: e.path, oid: e.oid, type: e.type }));
    if (this.treeCache.size > 50_000) this.treeCache.clear();
    this.treeCache.set(oid, entries);
    return entries;
  }

  private async rootTree(commit: string): Promise<string> {
    const { commit: c } = await git.readCommit({ fs, gitdir: this.gitdir, oid: commit });
    return c.tree;
  }

  private async text(oid: string): Promise<string> {
    const { blob } = await git.readBlob({ fs, gitdir: this.gitdir, oid });
    return Buffer.from(blob).toString('utf8');
  }

  private async parse<K extends FileKind>(kind: K, entry: TreeEntry, file: string): Promise<{ ok: true; value: FileKinds[K] } | { ok: false; problems: Problem[] }> {
    const key = `${kind}\0${file}\0${entry.oid}`;
    let parsed = this.parsedByBlob.get(key);
    if (!parsed) {
      parsed = validateFile(kind, await this.text(entry.oid), file) as Parsed;
      if (this.parsedByBlob.size > 100_000) this.parsedByBlob.clear();
      this.parsedByBlob.set(key, parsed);
    }
    return parsed as { ok: true; value: FileKinds[K] } | { ok: false; problems: Problem[] };
  }

  async load(commit: string): Promise<LoadResult> {
    const problems: Problem[] = [];
    const missing = (file: string, message: string, rule = 'required-file'): void => {
      problems.push({ file, line: 1, column: 1, path: '', message, rule });
    };
    const root = await this.tree(await this.rootTree(commit));
    const at = (entries: TreeEntry[], name: string) => entries.find((e) => e.path === name);

    const slipwayEntry = at(root, 'slipway.yaml');
    if (!slipwayEntry || slipwayEntry.type !== 'blob') {
      missing('slipway.yaml', 'slipway.yaml is missing at the root of the environments repository; run `slipway init` to create one');
      return { ok: false, commit, problems };
    }
    const slipway = await this.parse('Slipway', slipwayEntry, 'slipway.yaml');
    if (!slipway.ok) return { ok: false, commit, problems: slipway.problems };
    const config = slipway.value;

    let quarantine: QuarantineConfig['spec']['digests'] = [];
    const quarantineEntry = at(root, 'quarantine.yaml');
    if (quarantineEntry) {
      const q = await this.parse('Quarantine', quarantineEntry, 'quarantine.yaml');
      if (q.ok) quarantine = q.value.spec.digests;
      else problems.push(...q.problems);
    }

    const publicKeys: Record<string, string> = {};
    for (const key of config.spec.trust.keys) {
      const oid = await this.blobAt(root, key.publicKey);
      if (!oid) {
        missing('slipway.yaml', `trust key "${key.name}": ${key.publicKey} does not exist in this commit; add the PEM public key there`, 'public-key');
        continue;
      }
      publicKeys[key.name] = await this.text(oid);
    }

    const environments: EnvironmentState[] = [];
    for (const name of config.spec.environments) {
      const dirEntry = at(root, name);
      if (!dirEntry || dirEntry.type !== 'tree') {
        missing(`${name}/environment.yaml`, `environment "${name}" is listed in slipway.yaml but ${name}/ does not exist; create ${name}/environment.yaml`);
        continue;
      }
      const envTree = await this.tree(dirEntry.oid);
      const envFile = at(envTree, 'environment.yaml');
      if (!envFile) {
        missing(`${name}/environment.yaml`, `${name}/environment.yaml is missing; every environment needs one (target, approvals)`);
        continue;
      }
      const env = await this.parse('Environment', envFile, `${name}/environment.yaml`);
      if (!env.ok) problems.push(...env.problems);
      let freeze: EnvironmentState['freeze'];
      const freezeFile = at(envTree, 'freeze.yaml');
      if (freezeFile) {
        const f = await this.parse('FreezeWindows', freezeFile, `${name}/freeze.yaml`);
        if (f.ok) freeze = f.value;
        else problems.push(...f.problems);
      }
      const services: EnvironmentState['services'] = {};
      const servicesDir = at(envTree, 'services');
      if (servicesDir?.type === 'tree') {
        for (const entry of await this.tree(servicesDir.oid)) {
          if (entry.type !== 'blob' || !/\.ya?ml$/.test(entry.path)) continue;
          const file = `${name}/services/${entry.path}`;
          const stem = entry.path.replace(/\.ya?ml$/, '');
          const svc = await this.parse('Service', entry, file);
          if (!svc.ok) {
            problems.push(...svc.problems);
            continue;
          }
          if (svc.value.metadata.name !== stem) {
            problems.push({
              file,
              line: 1,
              column: 1,
              path: 'metadata.name',
              message: `metadata.name is "${svc.value.metadata.name}" but the file is named ${entry.path}; they must match`,
              rule: 'file-name',
            });
            continue;
          }
          services[stem] = svc.value;
        }
      }
      if (env.ok) environments.push({ name, config: env.value, ...(freeze ? { freeze } : {}), services });
    }

    if (problems.length > 0) return { ok: false, commit, problems };
    const state: DesiredState = { commit, config, publicKeys, quarantine, environments };
    return { ok: true, state };
  }

  private async blobAt(root: TreeEntry[], path: string): Promise<string | undefined> {
    const parts = path.replace(/^\.?\//, '').split('/').filter(Boolean);
    let entries = root;
    for (let i = 0; i < parts.length; i++) {
      const e = entries.find((x) => x.path === parts[i]);
      if (!e) return undefined;
      if (i === parts.length - 1) return e.type === 'blob' ? e.oid : undefined;
      if (e.type !== 'tree') return undefined;
      entries = await this.tree(e.oid);
    }
    return undefined;
  }

  async diff(from: string | undefined, to: string): Promise<CommitDiff> {
    const services: ServiceChange[] = [];
    const otherFiles: string[] = [];
    const toRoot = await this.tree(await this.rootTree(to));
    const fromRoot = from ? await this.tree(await this.rootTree(from)) : [];
    const index = (entries: TreeEntry[]) => new Map(entries.map((e) => [e.path, e]));
    const a = index(fromRoot);
    const b = index(toRoot);
    for (const name of new Set([...a.keys(), ...b.keys()])) {
      const x = a.get(name);
      const y = b.get(name);
      if (x?.oid === y?.oid) continue;
      if (x?.type !== 'tree' && y?.type !== 'tree') {
        otherFiles.push(name);
        continue;
      }
      await this.diffEnvironment(name, x?.type === 'tree' ? x.oid : undefined, y?.type === 'tree' ? y.oid : undefined, services, otherFiles);
    }
    return { from: from ?? '', to, services, otherFiles: otherFiles.sort() };
  }

  private async diffEnvironment(env: string, fromOid: string | undefined, toOid: string | undefined, services: ServiceChange[], otherFiles: string[]): Promise<void> {
    const a = new Map((fromOid ? await this.tree(fromOid) : []).map((e) => [e.path, e]));
    const b = new Map((toOid ? await this.tree(toOid) : []).map((e) => [e.path, e]));
    for (const name of new Set([...a.keys(), ...b.keys()])) {
      const x = a.get(name);
      const y = b.get(name);
      if (x?.oid === y?.oid) continue;
      if (name === 'services' && (x?.type === 'tree' || y?.type === 'tree')) {
        const sa = new Map((x?.type === 'tree' ? await this.tree(x.oid) : []).map((e) => [e.path, e]));
        const sb = new Map((y?.type === 'tree' ? await this.tree(y.oid) : []).map((e) => [e.path, e]));
        for (const file of new Set([...sa.keys(), ...sb.keys()])) {
          if (!/\.ya?ml$/.test(file)) continue;
          const p = sa.get(file);
          const q = sb.get(file);
          if (p?.oid === q?.oid) continue;
          services.push({
            environment: env,
            service: file.replace(/\.ya?ml$/, ''),
            kind: !p ? 'added' : !q ? 'removed' : 'modified',
            file: `${env}/services/${file}`,
          });
        }
        continue;
      }
      otherFiles.push(`${env}/${name}`);
    }
  }

  async commitsTouching(path: string, from: string | undefined, to: string): Promise<{ oid: string; message: string }[]> {
    const out: { oid: string; message: string }[] = [];
    const log = await git.log({ fs, gitdir: this.gitdir, ref: to, depth: 200 });
    for (const entry of log) {
      if (entry.oid === from) break;
      const parent = entry.commit.parent[0];
      const mine = await this.blobAt(await this.tree(entry.commit.tree), path);
      const theirs = parent ? await this.blobAt(await this.tree(await this.rootTree(parent)), path) : undefined;
      if (mine !== theirs) out.push({ oid: entry.oid, message: entry.commit.message });
    }
    return out;
  }
}
