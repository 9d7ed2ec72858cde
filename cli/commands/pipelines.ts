/**
 * `slipway pipelines trigger|status|list|logs|cancel`: builder jobs run by the controller, through its API
 * (`POST /api/v1/pipelines/trigger`, `GET /api/v1/pipelines[/:id]`). Exit 0 done (or succeeded with --wait),
 * 1 the job failed or was interrupted (with --wait), 2 bad input or no controller.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { SlipwayError } from '../../lib/errors.js';
import { homePath } from '../../lib/home.js';
import type { JobRecord, StageRecord } from '../../controller/pipelines/index.js';
import { resolveStoreArgument } from './build.js';
import { fail } from './init.js';

interface ApiFlags {
  url?: string;
  json?: boolean;
}

interface TriggerFlags extends ApiFlags {
  repo?: string;
  commit?: string;
  branch?: string;
  registry?: string;
  tag?: string;
  cache?: boolean;
  envs?: string;
  sign?: boolean;
  keyless?: boolean;
  actor?: string;
  wait?: boolean;
  timeout: string;
}

const FINAL = new Set(['succeeded', 'failed', 'interrupted', 'cancelled']);

type Call = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: Record<string, unknown> }>;

function api(flags: ApiFlags): Call {
  // The files `slipway controller` writes (controller/wiring.ts), read without loading the controller's modules.
  const endpoint = homePath('controller', 'endpoint');
  const tokenFile = homePath('controller', 'token');
  let url = flags.url ?? process.env.SLIPWAY_CONTROLLER_URL;
  if (!url) {
    if (!existsSync(endpoint)) {
      throw new SlipwayError('NO_CONTROLLER', 'no controller is running here; start one with `slipway controller --repo <path>` or pass --url', 'stalling');
    }
    url = readFileSync(endpoint, 'utf8').trim();
  }
  const base = url.replace(/\/$/, '');
  const token = process.env.SLIPWAY_CONTROLLER_TOKEN?.trim() || (existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : '');
  if (!token) throw new SlipwayError('NO_TOKEN', `no API token: set SLIPWAY_CONTROLLER_TOKEN or run this where the controller keeps ${tokenFile}`, 'stalling');
  return async (method, path, body) => {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new SlipwayError('NO_CONTROLLER', `cannot reach the controller at ${base}: ${(err as Error).message}`, 'waiting');
    }
    const text = await res.text();
    let answer: Record<string, unknown>;
    try {
      answer = JSON.parse(text) as Record<string, unknown>;
    } catch {
      answer = { text };
    }
    if (!res.ok) {
      const error = (answer.error ?? {}) as { code?: string; message?: string; field?: string };
      throw new SlipwayError(error.code ?? 'API_ERROR', `the controller answered ${res.status}: ${error.message ?? 'no message'}`, res.status === 429 ? 'waiting' : 'stalling', {
        status: res.status,
        ...(error.field ? { field: error.field } : {}),
      });
    }
    return { status: res.status, body: answer };
  };
}

function duration(ms: number | undefined): string {
  if (ms === undefined) return '';
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  return `${Math.floor(ms / 60_000)}m${String(Math.round((ms % 60_000) / 1_000)).padStart(2, '0')}s`;
}

function stageLine(s: StageRecord): string {
  const extra = [s.exitCode !== null && s.status !== 'running' ? `exit ${s.exitCode}` : '', s.shards ? `${s.shards} shards` : '', s.reason ? `(${s.reason})` : ''].filter(Boolean).join('  ');
  return `  ${s.name.padEnd(12)} ${s.status.padEnd(8)} ${duration(s.durationMs).padStart(7)}  ${extra}`.trimEnd();
}

export function describeJob(job: JobRecord): string {
  const commit = job.commit ? ` commit ${job.commit.slice(0, 12)}${job.branch ? ` (${job.branch})` : ''}` : '';
  const lines = [`pipeline ${job.id}: ${job.state}${job.state === 'running' ? ` (${job.step})` : ''}${commit}`, ...job.stages.map(stageLine)];
  const r = job.result;
  if (r) {
    lines.push(`image: ${r.imageRef}${r.cacheHit ? ' (from cache)' : ''}`);
    lines.push(r.signed ? `signed: ${r.signature?.by ?? 'yes'}` : `unsigned: ${r.unsignedReason ?? 'no provenance'}`);
    if (r.proposal) lines.push(`proposal: ${r.proposal.summary}`);
  }
  if (job.error) {
    lines.push(`error: ${job.error.code}: ${job.error.message}`);
    if (job.error.logPath) lines.push(`log: ${job.error.logPath}`);
  }
  return lines.join('\n');
}

/** Polls the job until it ends, printing each stage change on stderr as it is seen. */
async function follow(call: Call, id: string, timeoutMs: number, quiet: boolean): Promise<JobRecord> {
  const deadline = Date.now() + timeoutMs;
  const shown = new Map<string, string>();
  for (;;) {
    const job = (await call('GET', `/api/v1/pipelines/${encodeURIComponent(id)}`)).body as unknown as JobRecord;
    if (!quiet) {
      for (const s of job.stages) {
        const key = `${s.status}`;
        if (s.status !== 'pending' && shown.get(s.name) !== key) {
          shown.set(s.name, key);
          process.stderr.write(`${stageLine(s).trim()}\n`);
        }
      }
    }
    if (FINAL.has(job.state)) return job;
    if (Date.now() > deadline) {
      throw new SlipwayError('WAIT_TIMEOUT', `pipeline ${id} is still ${job.state} after ${duration(timeoutMs)}; see \`slipway pipelines status ${id}\``, 'waiting', { id });
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

function parseTimeout(text: string): number {
  const m = /^(\d+)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new SlipwayError('BAD_OPTION', `--timeout ${text} is not a duration (e.g. 90s, 10m)`, 'stalling', { option: 'timeout' });
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1_000);
}

function finish(job: JobRecord, flags: ApiFlags, waited: boolean): void {
  process.stdout.write(flags.json ? `${JSON.stringify(job, null, 2)}\n` : `${describeJob(job)}\n`);
  if (waited && job.state !== 'succeeded') process.exitCode = 1;
}

export function register(program: Command): void {
  const pipelines = program.command('pipelines').summary('builder jobs run by the controller: trigger, status, list, logs, cancel').description(
    'Builder jobs the running controller queues and runs (POST /api/v1/pipelines/trigger): the same build as `slipway build`,\n' +
      'with a bounded number at once (slipway controller --pipeline-concurrency). The address and token are found as for `slipway status`.',
  );
  const withApi = (c: Command) => c.option('--url <url>', 'the controller API (default: the address the local controller wrote)').option('--json', 'print the job record as JSON');

  withApi(
    pipelines
      .command('trigger')
      .description('queue a build of a service repository at a commit on the controller')
      .argument('[repo-dir]', 'the service repository on the controller machine (default: the current directory)')
      .option('--repo <dir>', 'same as the argument')
      .option('--commit <rev>', 'the commit to build (default HEAD)')
      .option('--branch <name>', 'the branch the build is for')
      .option('--registry <oci-dir|host:port/repo>', "where to push (default: the controller's $SLIPWAY_HOME/images)")
      .option('--tag <tag>', 'also tag the image')
      .option('--no-cache', 'run the stages even when the build cache has this build')
      .option('--envs <path|url>', 'then propose the digest to the first environment of this environments repository')
      .option('--sign', "fail when the controller has no signing key (default: sign when it has one)")
      .option('--no-sign', 'push without provenance')
      .option('--keyless', 'sign keylessly (Fulcio and Rekor)')
      .option('--actor <name>', 'who asks (recorded; the author of the proposal)')
      .option('--wait', 'follow the job until it ends; exit 1 unless it succeeded')
      .option('--timeout <duration>', 'with --wait: give up after this long', '30m'),
  ).action(async (repoArg: string | undefined, flags: TriggerFlags) => {
    try {
      const call = api(flags);
      const body = {
        repo: resolve(flags.repo ?? repoArg ?? '.'),
        ...(flags.commit ? { commit: flags.commit } : {}),
        ...(flags.branch ? { branch: flags.branch } : {}),
        ...(flags.registry ? { registry: resolveStoreArgument(flags.registry) } : {}),
        ...(flags.tag ? { tag: flags.tag } : {}),
        ...(flags.cache === false ? { noCache: true } : {}),
        ...(flags.envs ? { envs: /^[a-z]+:\/\//.test(flags.envs) ? flags.envs : resolve(flags.envs) } : {}),
        ...(flags.sign !== undefined ? { sign: flags.sign } : {}),
        ...(flags.keyless ? { keyless: true } : {}),
        ...(flags.actor ? { actor: flags.actor } : {}),
      };
      const queued = (await call('POST', '/api/v1/pipelines/trigger', body)).body as unknown as JobRecord;
      if (!flags.wait) {
        if (flags.json) process.stdout.write(`${JSON.stringify(queued, null, 2)}\n`);
        else process.stdout.write(`${queued.id}\n`);
        return;
      }
      if (!flags.json) process.stderr.write(`queued: ${queued.id}\n`);
      finish(await follow(call, queued.id, parseTimeout(flags.timeout), !!flags.json), flags, true);
    } catch (err) {
      fail(err, flags.json);
    }
  });

  withApi(
    pipelines
      .command('status')
      .description('show a job: state, every stage (status, exit code, duration), the image, signing and proposal')
      .argument('<id>', 'the job id (from trigger or list)')
      .option('--wait', 'follow the job until it ends; exit 1 unless it succeeded')
      .option('--timeout <duration>', 'with --wait: give up after this long', '30m'),
  ).action(async (id: string, flags: ApiFlags & { wait?: boolean; timeout: string }) => {
    try {
      const call = api(flags);
      if (flags.wait) return finish(await follow(call, id, parseTimeout(flags.timeout), !!flags.json), flags, true);
      finish((await call('GET', `/api/v1/pipelines/${encodeURIComponent(id)}`)).body as unknown as JobRecord, flags, false);
    } catch (err) {
      fail(err, flags.json);
    }
  });

  withApi(
    pipelines
      .command('cancel')
      .description('stop a job: a queued one never runs, a running one has its build killed')
      .argument('<id>', 'the job id')
      .option('--actor <name>', 'who cancels (recorded)'),
  ).action(async (id: string, flags: ApiFlags & { actor?: string }) => {
    try {
      const { body } = await api(flags)('POST', `/api/v1/pipelines/${encodeURIComponent(id)}/cancel`, flags.actor ? { actor: flags.actor } : {});
      finish(body as unknown as JobRecord, flags, false);
    } catch (err) {
      fail(err, flags.json);
    }
  });

  pipelines
    .command('logs')
    .description("print a finished stage's log (its last MiB) from the controller")
    .argument('<id>', 'the job id')
    .argument('<stage>', 'the stage name')
    .option('--url <url>', 'the controller API (default: the address the local controller wrote)')
    .action(async (id: string, stage: string, flags: ApiFlags) => {
      try {
        const { body } = await api(flags)('GET', `/api/v1/pipelines/${encodeURIComponent(id)}/stages/${encodeURIComponent(stage)}/log`);
        process.stdout.write(String(body.text ?? ''));
      } catch (err) {
        fail(err, false);
      }
    });

  withApi(
    pipelines
      .command('list')
      .description('recent jobs, newest first')
      .option('--state <state>', 'only jobs in this state (queued, running, succeeded, failed, interrupted, cancelled)')
      .option('--limit <n>', 'at most this many', '20'),
  ).action(async (flags: ApiFlags & { state?: string; limit: string }) => {
    try {
      const call = api(flags);
      const query = new URLSearchParams({ limit: flags.limit, ...(flags.state ? { state: flags.state } : {}) });
      const { body } = await call('GET', `/api/v1/pipelines?${query}`);
      if (flags.json) return void process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
      const jobs = body.jobs as JobRecord[];
      if (jobs.length === 0) return void process.stdout.write('no pipeline jobs\n');
      const rows = jobs.map((j) => [j.id, j.state, j.commit?.slice(0, 12) ?? j.request.commit ?? 'HEAD', j.request.repo, j.result ? j.result.digest.slice(0, 19) : (j.error?.code ?? '-')]);
      const header = ['ID', 'STATE', 'COMMIT', 'REPO', 'IMAGE/ERROR'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
      process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
    } catch (err) {
      fail(err, flags.json);
    }
  });
}
