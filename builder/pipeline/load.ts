/**
 * `.slipway/pipeline.yaml` → a checked, normalized pipeline. Schema problems come from the shared
 * validator (file:line:col); this adds what the schema cannot say: conditions that do not parse, an
 * image context that escapes the checkout, a workingDir that is not absolute.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { Node } from 'yaml';
import { SlipwayError } from '../../lib/errors.js';
import type { ImageConfigSpec, PipelineConfig, Problem } from '../../schemas/index.js';
import { ConditionSyntaxError, parseCondition, type Condition } from './condition.js';

export const PIPELINE_FILE = '.slipway/pipeline.yaml';
export const DEFAULT_STAGE_TIMEOUT_MS = 30 * 60_000;

export interface Stage {
  name: string;
  /** What runs: `['sh', '-c', command]` for a string command, the argv as given otherwise. */
  argv: string[];
  /** The command as written (for messages). */
  display: string;
  timeoutMs: number;
  parallelism: number;
  condition?: { text: string; parsed: Condition };
  env: Record<string, string>;
}

export interface Pipeline {
  name: string;
  file: string;
  /** sha256 of the file bytes: part of the build cache key. */
  digest: string;
  stages: Stage[];
  image: ImageConfigSpec;
  config: PipelineConfig;
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30s`, `1h30m`, `250ms` → milliseconds (the schema guarantees the shape). */
export function durationMs(text: string): number {
  let total = 0;
  for (const m of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) total += Number(m[1]) * UNITS[m[2]!]!;
  return total;
}

export function pipelineInvalid(problems: Problem[], file: string): SlipwayError {
  const sorted = [...problems].sort((a, b) => a.line - b.line || a.column - b.column || a.path.localeCompare(b.path));
  // Same shape as schemas' formatProblem (not imported: loading the validator costs a cache hit ~100 ms).
  const line = (p: Problem) => `${p.file}:${p.line}:${p.column}${p.path ? ` ${p.path}:` : ''} ${p.message}`;
  return new SlipwayError(
    'PIPELINE_INVALID',
    `${file} is invalid:\n${sorted.map((p) => `  ${line(p)}`).join('\n')}`,
    'stalling',
    { file, problems: sorted },
  );
}

/** Validates `text` against the Pipeline schema (loaded on first use), then checks and normalizes it. */
export async function parsePipeline(text: string, file = PIPELINE_FILE): Promise<Pipeline> {
  const { validateFile } = await import('../../schemas/index.js');
  const result = validateFile('Pipeline', text, file);
  if (!result.ok) throw pipelineInvalid(result.problems, file);
  return await pipelineFromConfig(result.value, text, file);
}

/**
 * The checks after the schema, and normalization. `config` must have passed schema validation (it is
 * how a pipeline validated before is reused without compiling the schemas again).
 */
export async function pipelineFromConfig(config: PipelineConfig, text: string, file = PIPELINE_FILE): Promise<Pipeline> {
  const spec = config.spec;
  const findings: { segments: (string | number)[]; message: string; rule: string; offsetInValue: number }[] = [];
  const problem = (segments: (string | number)[], message: string, rule: string, offsetInValue = 0) => {
    findings.push({ segments, message, rule, offsetInValue });
  };

  const stages: Stage[] = spec.stages.map((s, i) => {
    let condition: Stage['condition'];
    if (s.condition !== undefined) {
      try {
        condition = { text: s.condition, parsed: parseCondition(s.condition) };
      } catch (err) {
        if (!(err instanceof ConditionSyntaxError)) throw err;
        problem(['spec', 'stages', i, 'condition'], `${err.message} (conditions look like: branch == main, branch =~ ^release/ && branch != release/old)`, 'condition', err.offset);
      }
    }
    const timeoutMs = s.timeout ? durationMs(s.timeout) : DEFAULT_STAGE_TIMEOUT_MS;
    if (s.timeout && timeoutMs <= 0) problem(['spec', 'stages', i, 'timeout'], 'must be longer than 0', 'timeout');
    for (const key of Object.keys(s.env ?? {})) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) problem(['spec', 'stages', i, 'env', key], `${JSON.stringify(key)} is not a valid environment variable name`, 'env-name');
    }
    const argv = typeof s.command === 'string' ? ['sh', '-c', s.command] : s.command;
    return {
      name: s.name,
      argv,
      display: typeof s.command === 'string' ? s.command : s.command.join(' '),
      timeoutMs,
      parallelism: s.parallelism ?? 1,
      ...(condition ? { condition } : {}),
      env: { ...(s.env ?? {}) },
    };
  });

  const context = spec.image.context;
  const normal = posix.normalize(context);
  if (posix.isAbsolute(context) || normal === '..' || normal.startsWith('../')) {
    problem(['spec', 'image', 'context'], `must be a directory inside the repository (relative, without ..), got ${JSON.stringify(context)}`, 'context');
  }
  if (spec.image.workingDir !== undefined && !posix.isAbsolute(spec.image.workingDir)) {
    problem(['spec', 'image', 'workingDir'], `must be an absolute path such as /app, got ${JSON.stringify(spec.image.workingDir)}`, 'workingDir');
  }
  if (findings.length > 0) {
    const locate = await positions(text);
    const problems = findings.map((f): Problem => {
      const at = locate(f.segments.map(String), f.offsetInValue);
      return { file, line: at.line, column: at.column, path: formatSegments(f.segments), message: f.message, rule: f.rule };
    });
    throw pipelineInvalid(problems, file);
  }

  return {
    name: config.metadata.name,
    file,
    digest: `sha256:${createHash('sha256').update(text).digest('hex')}`,
    stages,
    image: spec.image,
    config,
  };
}

function formatSegments(segments: (string | number)[]): string {
  return segments.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : /^[A-Za-z_][A-Za-z0-9_-]*$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`)).join('');
}

/** Line/column of the value at a path (plus an offset into a plain scalar), for problems found after schema validation. */
async function positions(text: string): Promise<(segments: string[], offsetInValue: number) => { line: number; column: number }> {
  // Loaded only when there is a problem to place: a valid pipeline never pays for the YAML parser here.
  const { LineCounter, parseDocument, isMap, isSeq, isScalar } = await import('yaml');
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  return (segments, offsetInValue) => {
    let node: unknown = doc.contents;
    for (const seg of segments) {
      if (isMap(node)) node = node.items.find((p) => isScalar(p.key) && String(p.key.value) === seg)?.value;
      else if (isSeq(node)) node = node.items[Number(seg)];
      else break;
    }
    const range = (node as Node | undefined)?.range;
    if (!range) return { line: 1, column: 1 };
    const plain = isScalar(node) && (node.type === 'PLAIN' || node.type === undefined);
    const quoted = isScalar(node) && (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE');
    const offset = range[0] + (plain ? offsetInValue : quoted ? offsetInValue + 1 : 0);
    const { line, col } = lineCounter.linePos(Math.min(offset, range[1]));
    return { line, column: col };
  };
}
