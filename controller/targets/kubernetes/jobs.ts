/**
 * Builder runs as Kubernetes Jobs, made from the template in deploy/builder-job.yaml: the template owns the
 * sandbox (service account without API access, non-root, deadlines, resources); a run fills in only its
 * name, labels, and the container's args and env.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { SlipwayError } from '../../../lib/errors.js';
import { isApiStatus, type KubeClient } from './client.js';
import type { KubeObject } from './objects.js';

export interface BuilderRun {
  /** Unique per run (e.g. the service and commit): the Job name derives from it, so starting twice is idempotent. */
  id: string;
  service: string;
  repository: string;
  commit: string;
  /** Overrides the template's image (e.g. the controller's own image by digest). */
  image?: string;
  env?: Record<string, string>;
}

export type JobPhase = 'pending' | 'running' | 'succeeded' | 'failed';

export interface JobStatus {
  name: string;
  phase: JobPhase;
  reason?: string;
}

interface JobObject extends KubeObject {
  spec: {
    template: {
      metadata?: { labels?: Record<string, string> };
      spec: { containers: { name: string; image: string; args?: string[]; env?: { name: string; value?: string; valueFrom?: unknown }[] }[] };
    };
  };
  status?: {
    active?: number;
    succeeded?: number;
    failed?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

/** deploy/builder-job.yaml, found next to the sources or the compiled dist/ tree (and in the image at /app/deploy). */
export function defaultBuilderTemplatePath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'deploy', 'builder-job.yaml');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new SlipwayError('JOB_TEMPLATE', 'deploy/builder-job.yaml not found next to the Slipway installation', 'stalling');
}

export function loadBuilderTemplate(path = defaultBuilderTemplatePath()): JobObject {
  const doc = parse(readFileSync(path, 'utf8')) as JobObject | null;
  if (!doc || doc.kind !== 'Job' || !doc.spec?.template?.spec?.containers?.length) {
    throw new SlipwayError('JOB_TEMPLATE', `${path}: not a batch/v1 Job with at least one container`, 'stalling', { path });
  }
  return doc;
}

/** A DNS-1123 name of at most 63 characters, unique per run id. */
export function builderJobName(id: string): string {
  const slug = id.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  const name = `slipway-build-${slug}`;
  return name.length <= 63 ? name : name.slice(0, 63).replace(/-+$/, '');
}

export function builderJobFor(template: JobObject, run: BuilderRun): JobObject {
  if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(run.commit)) {
    throw new SlipwayError('BAD_COMMIT', `builder run ${run.id}: commit must be a full hex object id, got "${run.commit}"`, 'stalling');
  }
  const job = structuredClone(template);
  const labels = {
    'slipway.dev/service': run.service,
    'slipway.dev/commit': run.commit,
    'slipway.dev/run': builderJobName(run.id).slice('slipway-build-'.length) || 'run',
  };
  job.metadata = { ...job.metadata, name: builderJobName(run.id), labels: { ...job.metadata.labels, ...labels } };
  job.spec.template.metadata = { ...job.spec.template.metadata, labels: { ...job.spec.template.metadata?.labels, ...labels } };
  const [container, ...rest] = job.spec.template.spec.containers;
  const env = [...(container.env ?? [])];
  for (const [name, value] of Object.entries({ SLIPWAY_BUILD_REPOSITORY: run.repository, SLIPWAY_BUILD_COMMIT: run.commit, ...run.env })) {
    const at = env.findIndex((e) => e.name === name);
    if (at >= 0) env[at] = { name, value };
    else env.push({ name, value });
  }
  job.spec.template.spec.containers = [
    { ...container, ...(run.image ? { image: run.image } : {}), args: [...(container.args ?? []), '--repo', run.repository, '--commit', run.commit], env },
    ...rest,
  ];
  return job;
}

/** Create the run's Job; a Job of the same run that already exists is returned as is. */
export async function startBuilderJob(client: KubeClient, template: JobObject, run: BuilderRun): Promise<JobObject> {
  const job = builderJobFor(template, run);
  try {
    return (await client.create(job as never)) as JobObject;
  } catch (err) {
    if (!isApiStatus(err, 409)) throw err;
    const existing = (await client.get({ apiVersion: 'batch/v1', kind: 'Job', name: job.metadata.name, namespace: job.metadata.namespace })) as JobObject | undefined;
    if (!existing) throw err;
    return existing;
  }
}

export function jobStatusOf(job: JobObject): JobStatus {
  const name = job.metadata.name;
  const conditions = job.status?.conditions ?? [];
  const failed = conditions.find((c) => c.type === 'Failed' && c.status === 'True');
  if (failed) return { name, phase: 'failed', reason: `${failed.reason ?? 'Failed'}: ${failed.message ?? 'the build failed'}` };
  if (conditions.some((c) => c.type === 'Complete' && c.status === 'True')) return { name, phase: 'succeeded' };
  if ((job.status?.active ?? 0) > 0) return { name, phase: 'running' };
  return { name, phase: 'pending' };
}

export async function builderJobStatus(client: KubeClient, namespace: string, name: string): Promise<JobStatus | undefined> {
  const job = (await client.get({ apiVersion: 'batch/v1', kind: 'Job', name, namespace })) as JobObject | undefined;
  return job && jobStatusOf(job);
}
