/**
 * `slipway build [repo-dir]`: run the service's pipeline at a commit, build the image, push it, print
 * `repository@sha256:…` and the stage results (or JSON with --json). Exit 0 built, 1 a stage failed,
 * 2 bad input or an unreachable registry.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { BuildOptions, BuildResult } from '../../builder/index.js';
import { isSlipwayError } from '../../lib/errors.js';
import { slipwayHome } from '../../lib/home.js';
import type { ImageStore } from '../../lib/oci/index.js';
import type { Landing } from '../../lib/promote/index.js';

export interface BuildCommandOptions {
  repo?: string;
  commit?: string;
  registry?: string;
  store?: string;
  branch?: string;
  tag?: string;
  json?: boolean;
  cache?: boolean;
  envs?: string;
}

/**
 * `oci:<dir>` or an existing directory or a path-looking value → OCI layout; `host[:port]/name` →
 * registry. Default: the layout `$SLIPWAY_HOME/images`.
 */
export function resolveStoreArgument(value: string | undefined, cwd = process.cwd()): string {
  if (!value) return `oci:${resolve(slipwayHome(), 'images')}`;
  if (value.startsWith('oci:')) return `oci:${resolve(cwd, value.slice(4))}`;
  const looksLikeRegistry = /^(localhost|\[[0-9a-f:]+\]|[a-z0-9-]+(\.[a-z0-9-]+)+|[a-z0-9-]+:\d+)(:\d+)?\/[^/]/i.test(value);
  if (!looksLikeRegistry || value.startsWith('.') || value.startsWith('/') || existsSync(resolve(cwd, value))) return `oci:${resolve(cwd, value)}`;
  return value;
}

/** Hooks other areas add (signing, promotion) without editing this file's flow. */
export type AfterBuild = (result: BuildResult, ctx: { store: ImageStore; options: BuildCommandOptions }) => Promise<void>;
const afterBuildHooks: AfterBuild[] = [];
export function addAfterBuildHook(hook: AfterBuild): void {
  afterBuildHooks.push(hook);
}

export function cacheHitLine(digest: string): string {
  return `cache hit: ${digest} (stages skipped)\n`;
}

/** stdout: the image reference (or the whole result as JSON); stderr: how it was made and the stage results. */
export async function printBuildResult(result: BuildResult, options: BuildCommandOptions, landing?: Landing): Promise<void> {
  if (options.json) {
    process.stdout.write(`${JSON.stringify(landing ? { ...result, promotion: landing } : result, null, 2)}\n`);
    return;
  }
  const { stageLine } = await import('../../builder/pipeline/index.js');
  process.stdout.write(`${result.imageRef}\n`);
  process.stderr.write(`${result.cached ? 'from cache' : 'built'}: ${result.source.commit.slice(0, 12)}${result.source.branch ? ` (${result.source.branch})` : ''}\n`);
  for (const stage of result.stages) process.stderr.write(`  ${stageLine(stage)}\n`);
  if (result.logDir) process.stderr.write(`logs: ${result.logDir}\n`);
  if (landing) {
    const { describeLanding } = await import('../../lib/promote/index.js');
    process.stderr.write(`promotion: ${describeLanding(landing)}\n`);
  }
}

/** A SlipwayError becomes a message (and JSON with --json) and exit 1 (a stage failed) or 2; false for anything else. */
export function reportBuildError(err: unknown, options: BuildCommandOptions): boolean {
  if (!isSlipwayError(err)) return false;
  if (options.json) process.stdout.write(`${JSON.stringify({ error: err.toJSON() }, null, 2)}\n`);
  process.stderr.write(`slipway build: ${err.message}\n`);
  process.exitCode = err.code === 'STAGE_FAILED' || err.code === 'BUILD_CANCELLED' ? 1 : 2;
  return true;
}

export function register(program: Command): void {
  program
    .command('build')
    .description('Run the pipeline of a service repository at a commit, build its image reproducibly and push it by digest')
    .argument('[repo-dir]', 'the service repository (default: the current directory)')
    .option('--repo <dir>', 'the service repository (same as the argument)')
    .option('--commit <rev>', 'the commit to build (default HEAD)')
    .option('--registry <oci-dir|host:port/repo>', 'where to push: an OCI layout dir (oci:<dir> or a path) or a registry repository')
    .option('--store <oci-dir|host:port/repo>', 'same as --registry')
    .option('--branch <name>', 'the branch the build is for (stage conditions); default the checked-out branch at that commit')
    .option('--tag <tag>', 'also tag the image (deployments always use the digest)')
    .option('--no-cache', 'run the stages even when the cache has this build')
    .option('--envs <path|url>', 'then propose the digest to the first environment of this environments repository (merged when it auto-merges and the provenance verifies; deployable branches only)')
    .option('--json', 'print the result as JSON')
    .action(async (repoArg: string | undefined, options: BuildCommandOptions, command: Command) => {
      // Loaded here, not at the top, so other commands do not pay for the builder's modules.
      const { build, createProgressReporter } = await import('../../builder/index.js');
      const repoDir = resolve(options.repo ?? repoArg ?? '.');
      const store = resolveStoreArgument(options.registry ?? options.store);
      const progress = createProgressReporter(process.stderr);
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const buildOptions: BuildOptions = {
        repoDir,
        store,
        ...(options.commit ? { commit: options.commit } : {}),
        ...(options.branch ? { branch: options.branch } : {}),
        ...(options.tag ? { tag: options.tag } : {}),
        noCache: options.cache === false,
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === 'cache-hit') process.stderr.write(cacheHitLine(event.digest));
          else if (event.type === 'waiting-for-build') process.stderr.write(`waiting: pid ${event.pid} is building the same commit\n`);
          else if (event.type !== 'resolved' && event.type !== 'image-built' && event.type !== 'pushed') progress.onEvent(event);
        },
        afterPush: async (result, ctx) => {
          for (const hook of afterBuildHooks) await hook(result, { store: ctx.store, options });
        },
      };
      try {
        const result = await build(buildOptions);
        progress.stop();
        let landing: Landing | undefined;
        if (options.envs) {
          const { landAfterBuild } = await import('../../lib/promote/index.js');
          landing = await landAfterBuild(options.envs, { service: result.pipeline.name, repository: result.repository, digest: result.digest, source: result.source });
        }
        await printBuildResult(result, options, landing);
      } catch (err) {
        progress.stop();
        if (reportBuildError(err, options)) return;
        throw err;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      void command;
    });
}
