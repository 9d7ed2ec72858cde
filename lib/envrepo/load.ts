/**
 * Desired state from one commit: every file read from git objects (never the working tree), validated
 * by its schema, then the rules that span files. All problems are returned at once; a commit with any
 * problem yields no state at all, so nothing is ever half-applied.
 */
import { posix } from 'node:path';
import { parse } from 'yaml';
import {
  locateInYaml,
  sortProblems,
  validateFile,
  type EnvironmentConfig,
  type FileKind,
  type FileKinds,
  type FreezeConfig,
  type Problem,
  type QuarantineConfig,
  type ServiceConfig,
  type SlipwayConfig,
} from '../../schemas/index.js';
import { publicKeyProblem } from '../keys/index.js';
import { commitTree, readBlobText, readTreeEntries, snapshot, type EnvRepo, type TreeEntry } from './repo.js';
import type { EnvironmentState, LoadResult } from './types.js';

export const SLIPWAY_FILE = 'slipway.yaml';
export const QUARANTINE_FILE = 'quarantine.yaml';
export const ENVIRONMENT_FILE = 'environment.yaml';
export const FREEZE_FILE = 'freeze.yaml';
export const SERVICES_DIR = 'services';

/** Repo-relative path of a service file: `production/services/web.yaml`. */
export function servicePath(environment: string, service: string): string {
  return `${environment}/${SERVICES_DIR}/${service}.yaml`;
}

interface ParsedFile {
  value?: unknown;
  problems: Problem[];
  /** metadata.name as written and where, when the file parsed (also when it names the wrong thing). */
  declared?: { name: string; line: number; column: number };
}

/**
 * Parsed and validated files by (kind, path, blob id). A blob id fixes the content, so an entry never
 * goes stale; loading a commit after a one-file change parses one file. Bounded, least recently used
 * out first.
 */
const MAX_CACHED_FILES = 50_000;
const parsedFiles = new Map<string, ParsedFile>();
const stats = { parsed: 0, cached: 0 };

/** How many files were parsed vs served from the cache since the process started (for tests and benchmarks). */
export function loaderStats(): { parsed: number; cached: number } {
  return { ...stats };
}

export function clearLoaderCache(): void {
  parsedFiles.clear();
}

/** `metadata.name` of a YAML text when it is a string, whatever else is wrong with the file. */
function declaredName(text: string): string | undefined {
  try {
    const name = (parse(text, { maxAliasCount: 100 }) as { metadata?: { name?: unknown } } | null)?.metadata?.name;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined;
  }
}

async function parseBlob(repo: EnvRepo, kind: FileKind, path: string, oid: string, expectedName?: string): Promise<ParsedFile> {
  const key = `${kind}\0${path}\0${oid}\0${expectedName ?? ''}`;
  const hit = parsedFiles.get(key);
  if (hit) {
    stats.cached++;
    parsedFiles.delete(key);
    parsedFiles.set(key, hit);
    return hit;
  }
  stats.parsed++;
  const text = await readBlobText(repo, oid);
  const result = validateFile(kind, text, path);
  const parsed: ParsedFile = result.ok ? { value: result.value, problems: [] } : { problems: result.problems };
  if (expectedName !== undefined) {
    // Read the name even from a file with other problems, so a misnamed copy is reported as one.
    const name = result.ok ? (result.value as { metadata?: { name?: string } }).metadata?.name : declaredName(text);
    const nameIsBroken = !result.ok && result.problems.some((p) => p.path === 'metadata.name' || p.rule === 'yaml');
    if (name !== expectedName && !nameIsBroken && (result.ok || typeof name === 'string')) {
      const at = locateInYaml(text, ['metadata', 'name']);
      if (name !== undefined) parsed.declared = { name, ...at };
      parsed.problems.push({
        file: path,
        ...at,
        path: 'metadata.name',
        message: `must equal the ${kind === 'Service' ? 'file name' : 'directory name'} ${JSON.stringify(expectedName)}, got ${JSON.stringify(name)}; rename the file or fix the name`,
        rule: 'name-matches-path',
      });
      delete parsed.value;
    }
  }
  parsedFiles.set(key, parsed);
  if (parsedFiles.size > MAX_CACHED_FILES) parsedFiles.delete(parsedFiles.keys().next().value as string);
  return parsed;
}

/** Run `fn` over `items` with at most `limit` in flight (blob reads overlap their IO). */
async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function fileProblem(file: string, message: string, rule: string): Problem {
  return { file, line: 1, column: 1, path: '', message, rule };
}

interface EnvDir {
  name: string;
  entries: readonly TreeEntry[];
}

interface LoadedEnv {
  name: string;
  config?: EnvironmentConfig;
  freeze?: FreezeConfig;
  services: Record<string, ServiceConfig>;
  problems: Problem[];
}

async function loadEnvironment(repo: EnvRepo, dir: EnvDir): Promise<LoadedEnv> {
  const problems: Problem[] = [];
  const out: LoadedEnv = { name: dir.name, services: {}, problems };
  const jobs: Promise<void>[] = [];

  for (const entry of dir.entries) {
    const path = `${dir.name}/${entry.path}`;
    if (entry.path === ENVIRONMENT_FILE && entry.type === 'blob') {
      jobs.push(
        parseBlob(repo, 'Environment', path, entry.oid, dir.name).then((p) => {
          problems.push(...p.problems);
          if (p.value) out.config = p.value as EnvironmentConfig;
        }),
      );
    } else if (entry.path === FREEZE_FILE && entry.type === 'blob') {
      jobs.push(
        parseBlob(repo, 'FreezeWindows', path, entry.oid).then((p) => {
          problems.push(...p.problems);
          if (p.value) out.freeze = p.value as FreezeConfig;
        }),
      );
    } else if (entry.path === SERVICES_DIR && entry.type === 'tree') {
      jobs.push(loadServices(repo, dir.name, entry.oid, out));
    } else if (/\.ya?ml$/.test(entry.path)) {
      problems.push(fileProblem(path, `unknown file: an environment directory holds ${ENVIRONMENT_FILE}, ${FREEZE_FILE} and ${SERVICES_DIR}/<name>.yaml`, 'unknown-file'));
    }
  }
  await Promise.all(jobs);
  return out;
}

async function loadServices(repo: EnvRepo, env: string, treeOid: string, out: LoadedEnv): Promise<void> {
  const entries = await readTreeEntries(repo, treeOid);
  const files: { entry: TreeEntry; path: string; name: string }[] = [];
  for (const entry of entries) {
    const path = `${env}/${SERVICES_DIR}/${entry.path}`;
    if (entry.type !== 'blob') continue;
    if (entry.path.endsWith('.yml')) {
      const renamed = entry.path.replace(/\.yml$/, '.yaml');
      if (entries.some((e) => e.path === renamed)) {
        out.problems.push(fileProblem(path, `duplicate service ${JSON.stringify(renamed.slice(0, -5))}: ${env}/${SERVICES_DIR}/${renamed} declares it already; delete one of the two files`, 'duplicate-service'));
      } else {
        out.problems.push(fileProblem(path, `service files end in .yaml; rename it to ${renamed}`, 'file-extension'));
      }
      continue;
    }
    if (!entry.path.endsWith('.yaml')) continue;
    files.push({ entry, path, name: entry.path.slice(0, -'.yaml'.length) });
  }
  const parsed = await mapLimited(files, 32, (f) => parseBlob(repo, 'Service', f.path, f.entry.oid, f.name));
  // Each file is named after its service, so two files naming one service means one names the wrong one.
  const fileOfName = new Map(files.map((f) => [f.name, f.path]));
  parsed.forEach((p, i) => {
    const f = files[i]!;
    out.problems.push(...p.problems);
    const declared = p.declared;
    if (declared && declared.name !== f.name && fileOfName.has(declared.name)) {
      out.problems.push({
        file: f.path,
        line: declared.line,
        column: declared.column,
        path: 'metadata.name',
        message: `duplicate service name ${JSON.stringify(declared.name)}: ${fileOfName.get(declared.name)} declares it already; each service appears once per environment`,
        rule: 'duplicate-service',
      });
    }
    const service = p.value as ServiceConfig | undefined;
    if (service) out.services[service.metadata.name] = service;
  });
}

/** Find a blob by repo-relative path, reading only the trees on the way. */
async function findBlob(repo: EnvRepo, root: readonly TreeEntry[], path: string): Promise<string | undefined> {
  const parts = posix.normalize(path).replace(/^\.\//, '').split('/').filter(Boolean);
  if (parts.length === 0 || parts[0] === '..') return undefined;
  let entries = root;
  for (let i = 0; i < parts.length; i++) {
    const entry = entries.find((e) => e.path === parts[i]);
    if (!entry) return undefined;
    if (i === parts.length - 1) return entry.type === 'blob' ? entry.oid : undefined;
    if (entry.type !== 'tree') return undefined;
    entries = await readTreeEntries(repo, entry.oid);
  }
  return undefined;
}

/**
 * Load and validate the desired state at `commit` (a full commit id; see resolveCommit). Reads git
 * objects only. Returns every problem found, each with file:line:col, or the whole state.
 */
export async function loadDesiredState(opts: { repo: EnvRepo; commit: string }): Promise<LoadResult> {
  const repo = snapshot(opts.repo);
  const { commit } = opts;
  const problems: Problem[] = [];
  const root = await readTreeEntries(repo, await commitTree(repo, commit));
  const byName = new Map(root.map((e) => [e.path, e]));

  const slipwayEntry = byName.get(SLIPWAY_FILE);
  if (!slipwayEntry || slipwayEntry.type !== 'blob') {
    return {
      ok: false,
      commit,
      problems: [fileProblem(SLIPWAY_FILE, `missing: an environments repository has ${SLIPWAY_FILE} at its root (\`slipway init <dir>\` creates one)`, 'missing-file')],
    };
  }
  const slipwayParsed = await parseBlob(repo, 'Slipway', SLIPWAY_FILE, slipwayEntry.oid);
  problems.push(...slipwayParsed.problems);
  const config = slipwayParsed.value as SlipwayConfig | undefined;
  let slipwayText: string | undefined;
  const slipwayAt = async (path: (string | number)[], anchor: 'value' | 'key' = 'value') => {
    slipwayText ??= await readBlobText(repo, slipwayEntry.oid);
    return locateInYaml(slipwayText, path, anchor);
  };

  let quarantine: FileKinds['Quarantine'] | undefined;
  const quarantineEntry = byName.get(QUARANTINE_FILE);
  if (quarantineEntry?.type === 'blob') {
    const parsed = await parseBlob(repo, 'Quarantine', QUARANTINE_FILE, quarantineEntry.oid);
    problems.push(...parsed.problems);
    quarantine = parsed.value as QuarantineConfig | undefined;
  }

  for (const entry of root) {
    if (entry.type === 'blob' && /\.ya?ml$/.test(entry.path) && entry.path !== SLIPWAY_FILE && entry.path !== QUARANTINE_FILE) {
      const hint = entry.path.replace(/\.yml$/, '.yaml') === SLIPWAY_FILE || entry.path.replace(/\.yml$/, '.yaml') === QUARANTINE_FILE ? `; rename it to ${entry.path.replace(/\.yml$/, '.yaml')}` : '';
      problems.push(fileProblem(entry.path, `unknown file: the root of an environments repository holds ${SLIPWAY_FILE} and ${QUARANTINE_FILE}, environments are directories${hint}`, 'unknown-file'));
    }
  }

  // An environment directory is a top-level directory holding environment.yaml.
  const envDirs: EnvDir[] = [];
  await Promise.all(
    root
      .filter((e) => e.type === 'tree' && !e.path.startsWith('.'))
      .map(async (e) => {
        const entries = await readTreeEntries(repo, e.oid);
        if (entries.some((x) => x.path === ENVIRONMENT_FILE && x.type === 'blob')) envDirs.push({ name: e.path, entries });
        else if (entries.some((x) => x.path === SERVICES_DIR && x.type === 'tree')) {
          // Services nobody would deploy: most likely environment.yaml was deleted or misnamed.
          problems.push(
            fileProblem(
              `${e.path}/${ENVIRONMENT_FILE}`,
              `missing: ${e.path}/ holds ${SERVICES_DIR}/ but no ${ENVIRONMENT_FILE}, so its services are not deployed anywhere; add ${e.path}/${ENVIRONMENT_FILE} (and "${e.path}" to the promotion order) or remove the directory`,
              'missing-file',
            ),
          );
        }
      }),
  );
  envDirs.sort((a, b) => a.name.localeCompare(b.name));
  const envDirNames = new Set(envDirs.map((d) => d.name));

  const order = config?.spec.environments ?? [];
  if (config) {
    for (const [i, name] of order.entries()) {
      if (!envDirNames.has(name)) {
        problems.push({
          file: SLIPWAY_FILE,
          ...(await slipwayAt(['spec', 'environments', i])),
          path: `spec.environments[${i}]`,
          message: `unknown environment ${JSON.stringify(name)}: this commit has no ${name}/${ENVIRONMENT_FILE}; create it or remove ${JSON.stringify(name)} from the promotion order`,
          rule: 'promotion-order',
        });
      }
    }
    for (const dir of envDirs) {
      if (!order.includes(dir.name)) {
        problems.push({
          file: SLIPWAY_FILE,
          ...(await slipwayAt(['spec', 'environments'], 'key')),
          path: 'spec.environments',
          message: `environment directory ${dir.name}/ is not in the promotion order; add ${JSON.stringify(dir.name)} to spec.environments where it belongs, or delete the directory`,
          rule: 'promotion-order',
        });
      }
    }
  }

  const loaded = await Promise.all(envDirs.map((dir) => loadEnvironment(repo, dir)));
  for (const env of loaded) problems.push(...env.problems);

  const publicKeys: Record<string, string> = {};
  if (config) {
    for (const [i, key] of config.spec.trust.keys.entries()) {
      const oid = await findBlob(repo, root, key.publicKey);
      const where = async () => ({ file: SLIPWAY_FILE, ...(await slipwayAt(['spec', 'trust', 'keys', i, 'publicKey'])), path: `spec.trust.keys[${i}].publicKey` });
      if (!oid) {
        problems.push({ ...(await where()), message: `public key file ${key.publicKey} does not exist in this commit; commit the PEM public key there or fix the path`, rule: 'trust-key' });
        continue;
      }
      const pem = await readBlobText(repo, oid);
      const problem = publicKeyProblem(pem);
      if (problem) {
        problems.push({ ...(await where()), message: `public key file ${key.publicKey} is not usable: ${problem.replace(/^the file /, 'it ')}`, rule: 'trust-key' });
        continue;
      }
      publicKeys[key.name] = pem;
    }
  }

  if (problems.length > 0 || !config) return { ok: false, commit, problems: sortProblems(problems) };

  const byEnv = new Map(loaded.map((e) => [e.name, e]));
  const environments: EnvironmentState[] = order.map((name) => {
    const env = byEnv.get(name)!;
    return { name, config: env.config!, ...(env.freeze ? { freeze: env.freeze } : {}), services: env.services };
  });
  return {
    ok: true,
    state: { commit, config, publicKeys, quarantine: quarantine?.spec.digests ?? [], environments },
  };
}
