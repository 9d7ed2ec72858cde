/**
 * `slipway controller --repo <path|url>`: follow main of the environments repository and make every
 * environment match it on the embedded local target, serving the API on loopback.
 */
import { writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { Option, type Command } from 'commander';
import { SlipwayError } from '../../lib/errors.js';
import { formatProblem } from '../../schemas/index.js';
import type { ApiServer } from '../../controller/index.js';
import type { createLocalController } from '../../controller/wiring.js';
import { fail } from './init.js';

interface ControllerOptions {
  repo?: string;
  envs?: string;
  env?: string;
  port: string;
  host: string;
  schedule?: string;
  stateDir?: string;
  once?: boolean;
  json?: boolean;
  pipelineConcurrency?: string;
  leaderElect?: boolean;
  namespace?: string;
  shards?: string;
  replicas?: string;
  identity?: string;
  state?: string;
  leaseTiming?: string;
}

function positiveInteger(option: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1024) {
    throw new SlipwayError('BAD_OPTION', `--${option} ${text} is not a whole number from 1 to 1024`, 'stalling', { option });
  }
  return n;
}

/** `--lease-timing 4000,2500,500` (tests only: lease duration, renew deadline, retry period in ms). */
function parseLeaseTiming(text: string): { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number } {
  const parts = text.split(',').map((p) => Number(p.trim()));
  if (parts.length !== 3 || parts.some((n) => !Number.isInteger(n) || n <= 0)) {
    throw new SlipwayError('BAD_OPTION', `--lease-timing ${text}: expected <duration>,<renew deadline>,<retry period> in ms, e.g. 15000,10000,2000`, 'stalling', { option: 'lease-timing' });
  }
  const [leaseDurationMs, renewDeadlineMs, retryPeriodMs] = parts as [number, number, number];
  if (!(retryPeriodMs < renewDeadlineMs && renewDeadlineMs < leaseDurationMs)) {
    throw new SlipwayError('BAD_OPTION', `--lease-timing ${text}: needs retry period < renew deadline < lease duration`, 'stalling', { option: 'lease-timing' });
  }
  return { leaseDurationMs, renewDeadlineMs, retryPeriodMs };
}

/** Where records live: files by default; ConfigMaps with --state cluster, which --leader-elect needs. */
function stateMode(opts: ControllerOptions): 'file' | 'cluster' {
  const state = opts.state ?? (opts.leaderElect ? 'cluster' : 'file');
  if (state !== 'file' && state !== 'cluster') {
    throw new SlipwayError('BAD_OPTION', `--state ${state}: expected file or cluster`, 'stalling', { option: 'state' });
  }
  if (opts.leaderElect && state === 'file') {
    throw new SlipwayError('BAD_OPTION', '--leader-elect needs --state cluster: replicas share the rollout records through ConfigMaps, not files', 'stalling', { option: 'state' });
  }
  if (state === 'cluster' && opts.once) {
    throw new SlipwayError('BAD_OPTION', '--once runs a single pass on file state: drop --state cluster / --leader-elect', 'stalling', { option: 'once' });
  }
  if (state === 'file') {
    for (const [flag, value] of [['namespace', opts.namespace], ['shards', opts.shards], ['replicas', opts.replicas], ['identity', opts.identity], ['lease-timing', opts.leaseTiming]] as const) {
      if (value !== undefined) throw new SlipwayError('BAD_OPTION', `--${flag} only applies with --leader-elect or --state cluster`, 'stalling', { option: flag });
    }
  }
  return state;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SlipwayError('BAD_OPTION', `--port ${text} is not a port number (0-65535; 0 picks a free one)`, 'stalling', { option: 'port' });
  }
  return port;
}

export function register(program: Command): void {
  program
    .command('controller')
    .summary('run the controller: make every environment match main of the environments repo')
    .description(
      'Follows main of the environments repository (a path or an http(s) URL), on a schedule and on the git webhook,\n' +
        'gates every change (schema, provenance, quarantine, freeze windows) and rolls it out on the local target.\n' +
        'Serves the API on --host:--port (bearer token in $SLIPWAY_HOME/controller/token or SLIPWAY_CONTROLLER_TOKEN;\n' +
        'webhook secret in $SLIPWAY_HOME/controller/webhook-secret or SLIPWAY_WEBHOOK_SECRET).',
    )
    .option('--repo <path|url>', 'the environments repository (default: $SLIPWAY_ENVS or the current directory)')
    .option('--envs <path|url>', 'same as --repo')
    .option('--env <names>', 'only these environments, comma-separated (default: all in slipway.yaml)')
    .option('--port <port>', 'API port on the host', '7070')
    .option('--host <address>', 'API address (loopback by default)', '127.0.0.1')
    .option('--schedule <cron>', 'how often to look at main (node-cron, seconds allowed)', '*/30 * * * * *')
    .option('--state-dir <dir>', 'rollout state and audit log (default: $SLIPWAY_HOME/controller)')
    .option('--once', 'sync once, finish what can finish without waiting, print the status and exit')
    .option('--json', 'with --once: print the status as JSON')
    .option('--pipeline-concurrency <n>', 'builder jobs (POST /api/v1/pipelines/trigger) run at once (default: one per core, at most 4)')
    .option('--leader-elect', 'share the environment/cluster pairs with other replicas through coordination.k8s.io Leases (one per shard); implies --state cluster')
    .option('--namespace <ns>', 'with --leader-elect / --state cluster: namespace of the Leases and ConfigMaps (default: $POD_NAMESPACE or slipway-system)')
    .option('--shards <n>', 'with --leader-elect: number of shards (one Lease each); a pair belongs to shard sha256(environment NUL cluster) mod n (default 4)')
    .option('--replicas <n>', 'with --leader-elect: replicas expected; each takes free shards up to ceil(shards / replicas) (default 2)')
    .option('--identity <id>', 'with --leader-elect / --state cluster: this replica in Leases and records (default: $POD_NAME or <hostname>-<pid>)')
    .option('--state <file|cluster>', 'where rollout records and the audit trail live: files under --state-dir, or ConfigMaps per environment/cluster pair (default file; cluster with --leader-elect)')
    .addOption(new Option('--lease-timing <ms,ms,ms>', 'tests only: lease duration, renew deadline, retry period').hideHelp())
    .action(async (opts: ControllerOptions) => {
      let running: Awaited<ReturnType<typeof createLocalController>> | undefined;
      let api: ApiServer | undefined;
      let closePipelines = async (): Promise<void> => undefined;
      try {
        // Flags are checked before the controller's graph is loaded (about a second): a typo fails at once.
        const state = stateMode(opts);
        const shards = opts.shards ? positiveInteger('shards', opts.shards) : opts.leaderElect ? 4 : 1;
        const replicas = opts.replicas ? positiveInteger('replicas', opts.replicas) : 2;
        const leaseTiming = opts.leaseTiming ? parseLeaseTiming(opts.leaseTiming) : undefined;
        // Loaded here, not at start-up: the controller's graph costs about a second of every other command's start.
        const { ApiServer } = await import('../../controller/index.js');
        const { createLocalController, controllerSecret, defaultIdentity, endpointFile } = await import('../../controller/wiring.js');
        const repo = opts.repo ?? opts.envs ?? process.env.SLIPWAY_ENVS ?? process.cwd();
        const environments = opts.env?.split(',').map((e) => e.trim()).filter(Boolean);
        const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
        const cluster =
          state === 'cluster'
            ? {
                leaderElect: opts.leaderElect === true,
                namespace: opts.namespace ?? process.env.POD_NAMESPACE ?? 'slipway-system',
                identity: opts.identity ?? defaultIdentity(),
                shards,
                replicas,
                ...(leaseTiming ? { leaseTiming } : {}),
              }
            : undefined;
        running = await createLocalController({
          repo,
          ...(environments?.length ? { environments } : {}),
          ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
          ...(opts.schedule ? { schedule: opts.schedule } : {}),
          ...(cluster ? { cluster } : {}),
          log,
        });
        const { controller } = running;
        if (opts.once) {
          const report = await controller.once();
          const envs = controller.environments();
          if (opts.json) process.stdout.write(`${JSON.stringify({ report, environments: envs }, null, 2)}\n`);
          else {
            if (report.problems) process.stdout.write(`${report.problems.map(formatProblem).join('\n')}\n`);
            if (report.error) process.stdout.write(`error: ${report.error}\n`);
            process.stdout.write(`${envs.flatMap((e) => e.services.map((s) => `${e.environment}/${s.service}: ${s.phase} ${s.runningDigest ?? '-'}${s.message ? ` (${s.message})` : ''}`)).join('\n')}\n`);
          }
          if (report.error || report.problems) process.exitCode = 1;
          await running.close();
          return;
        }
        const pipelines = await (await import('../../controller/pipelines/index.js')).openPipelineQueue({
          stateDir: controller.stateDir,
          ...(opts.pipelineConcurrency ? { limits: { concurrency: positiveInteger('pipeline-concurrency', opts.pipelineConcurrency) } } : {}),
          log,
        });
        closePipelines = () => pipelines.close();
        api = new ApiServer({
          controller,
          pipelines,
          token: controllerSecret('token', 'SLIPWAY_CONTROLLER_TOKEN'),
          webhookSecret: controllerSecret('webhook-secret', 'SLIPWAY_WEBHOOK_SECRET'),
          host: opts.host,
          port: parsePort(opts.port),
        });
        const url = await api.listen();
        mkdirSync(dirname(endpointFile()), { recursive: true });
        writeFileSync(endpointFile(), `${url}\n`);
        log(
          `controller following ${controller.source.location}; API on ${url}` +
            (cluster
              ? `; state in ConfigMaps of ${cluster.namespace} as ${cluster.identity}${cluster.leaderElect ? `, ${cluster.shards} shard Lease(s) for ${cluster.replicas} replica(s)` : ''}`
              : ''),
        );
        await controller.start();
        // Hand edits to Kubernetes objects are put back on an interval (a local-only repo has nothing to watch).
        running.drift.start();
        const stop = async () => {
          log('stopping');
          rmSync(endpointFile(), { force: true });
          await api?.close();
          await closePipelines();
          await running?.close();
          process.exit(0);
        };
        process.once('SIGINT', () => void stop());
        process.once('SIGTERM', () => void stop());
      } catch (err) {
        await api?.close().catch(() => undefined);
        await closePipelines().catch(() => undefined);
        await running?.close().catch(() => undefined);
        fail(err, opts.json);
      }
    });
}
