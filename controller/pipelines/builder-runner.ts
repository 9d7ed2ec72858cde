/**
 * The real job runner: what `slipway build [--envs E]` does, as a function of the request — the builder's
 * `build()` (stages, reproducible image, push by digest, build cache), signing as `decideSigning` decides it
 * (the CLI's policy), then `landAfterBuild` when an environments repository is given — with every builder
 * event folded into the job's record while it runs.
 */
import { join } from 'node:path';
import { isSlipwayError, SlipwayError } from '../../lib/errors.js';
import { slipwayHome } from '../../lib/home.js';
import type { BuildEvent, StageResult } from '../../builder/index.js';
import { parse } from 'yaml';
import type { JobFailure, JobOutcome, JobResult, JobRunner, PipelineRequest, Preflight, StageRecord } from './types.js';

export interface BuilderRunnerOptions {
  /** Build cache, logs and the default OCI layout (`<home>/images`) live here; default $SLIPWAY_HOME. */
  home?: string;
  /** The environment the stages and the signer see (PATH, HOME, SLIPWAY_*); default the controller's own. */
  env?: NodeJS.ProcessEnv;
}

/** Where the image goes, as `slipway build --registry` reads it (paths here are absolute). */
export function storeOf(request: PipelineRequest, home: string): string {
  const registry = request.registry;
  if (!registry) return `oci:${join(home, 'images')}`;
  if (registry.startsWith('/')) return `oci:${registry}`;
  return registry;
}

export function stageRecord(stage: StageResult): StageRecord {
  // A stage the cancellation killed did not pass: failed, with the reason.
  const status = stage.status === 'succeeded' ? 'passed' : stage.status === 'skipped' ? 'skipped' : 'failed';
  const reason = stage.status === 'timed-out' ? 'timed out and was killed' : stage.reason;
  return {
    name: stage.name,
    status,
    exitCode: stage.exitCode,
    durationMs: stage.durationMs,
    ...(stage.logPath ? { logPath: stage.logPath } : {}),
    ...(stage.shards.length > 1 ? { shards: stage.shards.length } : {}),
    ...(reason ? { reason } : {}),
  };
}

export function createBuilderRunner(options: BuilderRunnerOptions = {}): JobRunner {
  const env = options.env ?? process.env;
  const home = options.home ?? slipwayHome(env);
  return {
    async preflight(request): Promise<Preflight> {
      const { resolveSource, readFileAtCommit, PIPELINE_FILE } = await import('../../builder/index.js');
      let source;
      try {
        source = await resolveSource({ repoDir: request.repo, rev: request.commit ?? 'HEAD', ...(request.branch ? { branch: request.branch } : {}) });
      } catch (err) {
        if (!isSlipwayError(err)) throw err;
        if (err.code === 'NOT_A_REPOSITORY') return { ok: false, field: 'repo', message: `field "repo": ${request.repo} is not a git repository on the controller machine` };
        if (err.code === 'COMMIT_NOT_FOUND') return { ok: false, field: 'commit', message: `field "commit": ${err.message}` };
        throw err;
      }
      const stages = stageNames(await readFileAtCommit(source, PIPELINE_FILE));
      return { ok: true, commit: source.commit, ...(source.branch ? { branch: source.branch } : {}), ...(stages ? { stages } : {}) };
    },

    async run(request, { signal, report, commit, branch }): Promise<JobOutcome> {
      // Loaded when a job runs: the controller starts without the builder's and sigstore's modules.
      const { build } = await import('../../builder/index.js');
      const { attestAfterPush, decideSigning } = await import('../../builder/sign/index.js');
      const rev = commit ?? request.commit;
      const forBranch = request.branch ?? branch;

      const signing = decideSigning({ ...(request.sign !== undefined ? { sign: request.sign } : {}), ...(request.keyless ? { keyless: true } : {}), env });
      let signed: Pick<JobResult, 'signed' | 'signature' | 'unsignedReason'> = signing.sign ? { signed: false } : { signed: false, unsignedReason: signing.reason };
      const onEvent = (event: BuildEvent) => {
        switch (event.type) {
          case 'resolved':
            return report({ type: 'resolved', commit: event.commit, ...(event.branch ? { branch: event.branch } : {}) });
          case 'stage-started':
            return report({ type: 'stage-started', stage: event.stage, shards: event.shards });
          case 'stage-finished':
            return report({ type: 'stage-finished', stage: stageRecord(event.result) });
          case 'image-built':
            return report({ type: 'step', step: 'image' });
          case 'cache-hit':
            return report({ type: 'step', step: 'image' });
          default:
            return undefined;
        }
      };
      try {
        const result = await build({
          repoDir: request.repo,
          store: storeOf(request, home),
          home,
          env,
          ...(rev ? { commit: rev } : {}),
          ...(forBranch ? { branch: forBranch } : {}),
          ...(request.tag ? { tag: request.tag } : {}),
          noCache: request.noCache === true,
          signal,
          onEvent,
          afterPush: async (built, ctx) => {
            if (!signing.sign) return;
            report({ type: 'step', step: 'signing' });
            await attestAfterPush(signing.signing, ({ signed: s, attached }) => {
              signed = {
                signed: true,
                signature: { by: s.keyName ? `key ${s.keyName}` : 'keyless (Fulcio certificate, Rekor entry)', attestationTag: attached.attestationTag, referrer: attached.referrerManifest },
              };
            })(built, ctx);
          },
        });
        // A cache hit ran no stages: the record shows the original run's.
        for (const stage of result.stages) report({ type: 'stage-finished', stage: stageRecord(stage) });
        let proposal: JobResult['proposal'];
        if (request.envs) {
          report({ type: 'step', step: 'proposing' });
          const { describeLanding, landAfterBuild } = await import('../../lib/promote/index.js');
          const landing = await landAfterBuild(
            request.envs,
            { service: result.pipeline.name, repository: result.repository, digest: result.digest, source: result.source },
            request.actor ? { actor: request.actor } : {},
          );
          proposal = { ...landing, summary: describeLanding(landing) };
        }
        return {
          state: 'succeeded',
          result: {
            imageRef: result.imageRef,
            repository: result.repository,
            digest: result.digest,
            cacheHit: result.cached,
            commit: result.source.commit,
            ...(result.source.branch ? { branch: result.source.branch } : {}),
            ...signed,
            ...(proposal ? { proposal } : {}),
            ...(result.logDir ? { logDir: result.logDir } : {}),
          },
        };
      } catch (err) {
        return failed(err);
      }
    },
  };
}

/**
 * The stage names of a pipeline file, to list them as pending; the builder validates the file itself when the
 * job runs (and reports a bad one), so a file that does not parse just lists nothing yet.
 */
function stageNames(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  try {
    const stages = (parse(text) as { spec?: { stages?: { name?: unknown }[] } })?.spec?.stages;
    if (!Array.isArray(stages) || !stages.every((s) => typeof s?.name === 'string')) return undefined;
    return stages.map((s) => s.name as string);
  } catch {
    return undefined;
  }
}

function failed(err: unknown): JobOutcome {
  if (!(err instanceof SlipwayError)) return { state: 'failed', error: { code: 'INTERNAL', message: (err as Error)?.message ?? String(err) } };
  const data = err.data as { stage?: string; stages?: StageResult[]; tail?: string[] };
  const stages = data.stages?.map(stageRecord);
  const error: JobFailure = {
    code: err.code,
    message: err.message,
    ...(data.stage ? { stage: data.stage } : {}),
    ...(data.tail ? { logTail: data.tail } : {}),
  };
  const logPath = stages?.find((s) => s.name === data.stage)?.logPath;
  if (logPath) error.logPath = logPath;
  return { state: 'failed', error, ...(stages ? { stages } : {}) };
}
