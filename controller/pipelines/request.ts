/**
 * The body of `POST /api/v1/pipelines/trigger`, checked with ajv against a JSON Schema: unknown and missing
 * fields, wrong types and malformed values are reported with the field named and what to send instead.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import type { PipelineRequest } from './types.js';

const HINTS: Record<keyof PipelineRequest, string> = {
  repo: 'an absolute path to the service repository on the controller machine (the builder builds from a git repository on disk; clone a remote one first)',
  commit: 'a commit sha or a revision git understands (HEAD, a branch, a tag)',
  branch: 'a git branch name such as main or release/1.2',
  registry: 'oci:<absolute dir>, an absolute dir (an OCI layout), or a registry repository host[:port]/name',
  tag: 'an OCI tag: letters, digits, _ . - (at most 128, not starting with . or -)',
  noCache: 'true to run the stages even when the build cache has this build',
  envs: 'the environments repository to propose the digest to (a path or an http(s) URL)',
  sign: 'true (a missing key fails the job), false (push without provenance), or leave it out (sign when a key exists)',
  keyless: 'true to sign keylessly with Fulcio and Rekor',
  actor: 'who asked, 1-100 characters',
};

export const PIPELINE_REQUEST_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://slipway.dev/schemas/pipeline-request.json',
  title: 'PipelineRequest',
  type: 'object',
  additionalProperties: false,
  required: ['repo'],
  properties: {
    repo: { type: 'string', maxLength: 4096, pattern: '^(/|file:///)[^\\u0000]*$' },
    commit: { type: 'string', maxLength: 256, pattern: '^[A-Za-z0-9_][A-Za-z0-9_./~^@{}+-]*$' },
    branch: { type: 'string', maxLength: 256, pattern: '^(?!/|.*([/.]\\.|//|@\\{|\\.lock$|/$))[A-Za-z0-9_./+-]+$' },
    registry: { type: 'string', maxLength: 4096, pattern: '^(oci:/[^\\u0000]*|/[^\\u0000]*|[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)+)$' },
    tag: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$' },
    noCache: { type: 'boolean' },
    envs: { type: 'string', minLength: 1, maxLength: 4096 },
    sign: { type: 'boolean' },
    keyless: { type: 'boolean' },
    actor: { type: 'string', minLength: 1, maxLength: 100 },
  },
} as const;

export type RequestCheck = { ok: true; request: PipelineRequest } | { ok: false; field: string; code: 'UNKNOWN_FIELD' | 'MISSING_FIELD' | 'BAD_FIELD'; message: string };

let validator: ValidateFunction | undefined;

export function checkPipelineRequest(data: unknown): RequestCheck {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return { ok: false, field: '', code: 'BAD_FIELD', message: 'the body must be a JSON object such as {"repo": "/path/to/service"}' };
  validator ??= new Ajv2020({ allErrors: true, strict: true }).compile(PIPELINE_REQUEST_SCHEMA);
  if (validator(data)) {
    const request = { ...(data as PipelineRequest) };
    if (request.repo.startsWith('file://')) request.repo = decodeURIComponent(new URL(request.repo).pathname);
    if (request.keyless && request.sign === false) return { ok: false, field: 'keyless', code: 'BAD_FIELD', message: 'field "keyless" asks for signing but "sign" is false; drop one of them' };
    return { ok: true, request };
  }
  return describe(pickError(validator.errors ?? []));
}

/** Unknown fields first, then missing ones, then the first bad value: the most actionable problem. */
function pickError(errors: ErrorObject[]): ErrorObject | undefined {
  return errors.find((e) => e.keyword === 'additionalProperties') ?? errors.find((e) => e.keyword === 'required') ?? errors[0];
}

function describe(error: ErrorObject | undefined): RequestCheck & { ok: false } {
  const allowed = Object.keys(PIPELINE_REQUEST_SCHEMA.properties).join(', ');
  if (!error) return { ok: false, field: '', code: 'BAD_FIELD', message: 'the body does not match the pipeline request schema' };
  if (error.keyword === 'additionalProperties') {
    const field = String((error.params as { additionalProperty: string }).additionalProperty);
    return { ok: false, field, code: 'UNKNOWN_FIELD', message: `unknown field "${field}"; allowed: ${allowed}` };
  }
  if (error.keyword === 'required') {
    const field = String((error.params as { missingProperty: string }).missingProperty) as keyof PipelineRequest;
    return { ok: false, field, code: 'MISSING_FIELD', message: `field "${field}" is required: ${HINTS[field]}` };
  }
  const field = error.instancePath.replace(/^\//, '') as keyof PipelineRequest;
  const hint = HINTS[field] ?? '';
  const what = error.keyword === 'type' ? `must be a ${(error.params as { type: string }).type}` : `is not valid (${error.message ?? error.keyword})`;
  return { ok: false, field, code: 'BAD_FIELD', message: `field "${field}" ${what}${hint ? `: ${hint}` : ''}` };
}
