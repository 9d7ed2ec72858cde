/**
 * The fast answer of `slipway build` on an unchanged commit, tried by bin/slipway.js before the CLI
 * (commander and every command module) is loaded. It takes only the argument shapes it fully
 * understands, and only a complete hit: the build is recorded in the cache and the target store holds
 * its manifest. Then it prints exactly what the full command prints and signs as it would. For
 * anything else (other flags, --help, a miss, an image to copy into the store, a registry that wants
 * auth, any error before the hit is confirmed) it returns false having printed nothing, and the full
 * CLI runs the command.
 */
import { resolve } from 'node:path';
import { cacheHitLine, printBuildResult, reportBuildError, resolveStoreArgument, type BuildCommandOptions } from './build.js';
import type { SigningFlags } from './sign-build.js';

type FastOptions = BuildCommandOptions & SigningFlags;

const VALUE_FLAGS: Record<string, keyof FastOptions> = { '--repo': 'repo', '--commit': 'commit', '--registry': 'registry', '--store': 'store', '--branch': 'branch', '--key': 'key' };
const BOOLEAN_FLAGS: Record<string, (o: FastOptions) => void> = {
  '--json': (o) => (o.json = true),
  '--keyless': (o) => (o.keyless = true),
  '--sign': (o) => (o.sign = true),
  '--no-sign': (o) => (o.sign = false),
};

/** The build command's arguments (after `build`), or undefined when they are not ones this path takes. */
export function parseFastBuildArgs(args: string[]): { repoArg?: string; options: FastOptions } | undefined {
  const options: FastOptions = {};
  const seen = new Set<string>();
  let repoArg: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-')) {
      if (repoArg !== undefined) return undefined;
      repoArg = arg;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const family = flag === '--no-sign' ? '--sign' : flag;
    if (seen.has(family)) return undefined;
    seen.add(family);
    const key = VALUE_FLAGS[flag];
    if (key) {
      const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (value === undefined || value === '' || value.startsWith('-')) return undefined;
      (options as Record<string, unknown>)[key] = value;
      continue;
    }
    const set = BOOLEAN_FLAGS[flag];
    if (!set || eq > 0) return undefined;
    set(options);
  }
  if (options.repo !== undefined && repoArg !== undefined) return undefined;
  return { ...(repoArg !== undefined ? { repoArg } : {}), options };
}

/** True when the command was answered from the cache (output printed, exit code set). */
export async function tryCachedBuild(args: string[]): Promise<boolean> {
  const parsed = parseFastBuildArgs(args);
  if (!parsed) return false;
  const { options } = parsed;
  const { findCachedBuild } = await import('../../builder/cache/index.js');
  let lookup;
  try {
    lookup = await findCachedBuild({
      repoDir: resolve(options.repo ?? parsed.repoArg ?? '.'),
      store: resolveStoreArgument(options.registry ?? options.store),
      ...(options.commit ? { commit: options.commit } : {}),
      ...(options.branch ? { branch: options.branch } : {}),
    });
  } catch {
    return false; // the full command reports it, with its exit status and --json shape
  }
  if (!lookup.hit) return false;
  const result = lookup.result;
  process.stderr.write(cacheHitLine(result.digest));
  try {
    const { openImageStore } = await import('../../lib/oci/index.js');
    const { signAfterBuild } = await import('./sign-build.js');
    await signAfterBuild(result, openImageStore(result.repository), options);
    await printBuildResult(result, options);
  } catch (err) {
    if (!reportBuildError(err, options)) throw err;
  }
  return true;
}
