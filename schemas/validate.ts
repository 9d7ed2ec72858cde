/**
 * Validate one Slipway file: parse the YAML (keeping node positions), check it against its JSON Schema
 * with ajv, add the rules a schema cannot say (a canary that never reaches 100, a cron that does not
 * parse), and turn every failure into a Problem with file:line:col, the field path and a sentence.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { CronExpressionParser } from 'cron-parser';
import { parsePlainYaml } from './plainyaml.js';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from './yaml.js';
import { DIGEST_PATTERN, DURATION_PATTERN, NAME_PATTERN } from './common.js';
import { environmentSchema, type EnvironmentConfig } from './environment.js';
import { freezeSchema, type FreezeConfig } from './freeze.js';
import { pipelineSchema, type PipelineConfig } from './pipeline.js';
import { sortProblems, type Problem } from './problem.js';
import { quarantineSchema, type QuarantineConfig } from './quarantine.js';
import { serviceSchema, type ServiceConfig } from './service.js';
import { slipwaySchema, type SlipwayConfig } from './slipway.js';

export interface FileKinds {
  Slipway: SlipwayConfig;
  Environment: EnvironmentConfig;
  FreezeWindows: FreezeConfig;
  Service: ServiceConfig;
  Pipeline: PipelineConfig;
  Quarantine: QuarantineConfig;
}
export type FileKind = keyof FileKinds;

export type ValidateResult<T> = { ok: true; value: T } | { ok: false; problems: Problem[] };

const schemas: Record<FileKind, object> = {
  Slipway: slipwaySchema,
  Environment: environmentSchema,
  FreezeWindows: freezeSchema,
  Service: serviceSchema,
  Pipeline: pipelineSchema,
  Quarantine: quarantineSchema,
};

export const FILE_KINDS = Object.keys(schemas) as FileKind[];

let ajv: Ajv2020 | undefined;
const compiled = new Map<FileKind, ValidateFunction>();

/** The validator of one kind, compiled on first use (a CLI run that reads no pipeline never compiles its schema). */
function validatorOf(kind: FileKind): ValidateFunction {
  const hit = compiled.get(kind);
  if (hit) return hit;
  if (!ajv) {
    // validateSchema: false skips checking our own constant schemas against the 2020-12 meta-schema on every
    // start (half the compile time); test/schemas/schemas.test.ts does that check.
    ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, strictRequired: false, validateSchema: false });
    ajv.addFormat('date-time', {
      type: 'string',
      validate: (s: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(s) && !Number.isNaN(Date.parse(s)),
    });
  }
  const validate = ajv.compile(schemas[kind]);
  compiled.set(kind, validate);
  return validate;
}

/**
 * Parse and validate `text` as a file of `kind`. `file` is only used to name the file in problems.
 * Never throws for bad input: every problem found is returned at once.
 */
export function validateFile<K extends FileKind>(kind: K, text: string, file: string, options: { fastPath?: boolean } = {}): ValidateResult<FileKinds[K]> {
  // Fast path: most files are plain YAML and valid, and need neither a Document nor positions. Any doubt
  // (plainyaml.ts returns undefined) or any finding, and the file goes down the full path below, which
  // finds the same problems again with their positions.
  if (options.fastPath !== false) {
    const data = parsePlainYaml(text);
    if (data !== undefined) {
      const validate = validatorOf(kind);
      if (validate(data) && semanticFindings(kind, data).length === 0) return { ok: true, value: data as FileKinds[K] };
    }
  }
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, keepSourceTokens: false });
  // Positions are only needed for problems: count lines then, not on every (mostly valid) file.
  let lineCounter: LineCounter | undefined;
  const at = (offset: number) => {
    lineCounter ??= countLines(text);
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };

  if (doc.errors.length > 0) {
    // After the first syntax error the parser's further complaints are mostly echoes of it: report the
    // first one, plus every duplicate key (each is independent).
    const firstSyntax = doc.errors.find((e) => e.code !== 'DUPLICATE_KEY');
    const reported = doc.errors.filter((e) => e === firstSyntax || e.code === 'DUPLICATE_KEY');
    const problems = reported.map((e): Problem => {
      if (e.code === 'DUPLICATE_KEY') {
        const key = unquote(/^[^:\n]*/.exec(text.slice(e.pos[0]))![0].trim());
        const segments = duplicateKeyPath(doc, e.pos[0]);
        return {
          file,
          ...at(e.pos[0]),
          path: formatPath(segments),
          message: `duplicate key ${JSON.stringify(key)}: a key may appear only once in a mapping; remove or merge one of them`,
          rule: 'duplicate-key',
        };
      }
      return { file, ...at(e.pos[0]), path: '', message: `malformed YAML: ${yamlMessage(e.code, e.message)}`, rule: 'yaml' };
    });
    return { ok: false, problems };
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return {
      ok: false,
      problems: [{ file, line: 1, column: 1, path: '', message: `malformed YAML: ${(err as Error).message}`, rule: 'yaml' }],
    };
  }
  if (data === null || data === undefined) {
    return {
      ok: false,
      problems: [{ file, line: 1, column: 1, path: '', message: `the file is empty; expected a ${kind} document (apiVersion, kind, spec)`, rule: 'type' }],
    };
  }

  const locate = (segments: string[], anchor: 'value' | 'key' = 'value') => {
    const pos = locateNode(doc, segments, anchor);
    return pos === undefined ? { line: 1, column: 1 } : at(pos);
  };

  const validate = validatorOf(kind);
  const schemaFindings = validate(data) ? [] : explain(collapseOneOf(validate.errors ?? []), kind);
  const findings = [...schemaFindings, ...semanticFindings(kind, data)];
  if (findings.length > 0) {
    const problems = findings.map(
      (x): Problem => ({ file, ...locate(x.segments, x.anchor), path: formatPath(x.segments), message: x.message, rule: x.rule }),
    );
    return { ok: false, problems: sortProblems(dedupe(problems)) };
  }
  return { ok: true, value: data as FileKinds[K] };
}

// ---------------------------------------------------------------------------------------------------
// Positions

/**
 * Line and column (1-based) of the node at `path` in a YAML text: its value, or with `anchor: 'key'`
 * the key naming it. Falls back to the deepest ancestor that exists, then to 1:1. For rules that span
 * files (the repo loader reports problems in slipway.yaml this way).
 */
export function locateInYaml(text: string, path: (string | number)[], anchor: 'value' | 'key' = 'value'): { line: number; column: number } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const offset = locateNode(doc, path.map(String), anchor);
  if (offset === undefined) return { line: 1, column: 1 };
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

function countLines(text: string): LineCounter {
  const counter = new LineCounter();
  counter.addNewLine(0);
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) counter.addNewLine(i + 1);
  return counter;
}

function unquote(key: string): string {
  return /^(["']).*\1$/.test(key) ? key.slice(1, -1) : key;
}

function keyName(node: unknown): string | undefined {
  if (isScalar(node)) return String(node.value);
  return undefined;
}

/** Offset of the node at `segments` (its value, or the key that names it); the deepest existing ancestor otherwise. */
function locateNode(doc: Document, segments: string[], anchor: 'value' | 'key'): number | undefined {
  let current: unknown = doc.contents;
  let keyNode: Node | undefined;
  let lastGood: number | undefined = (doc.contents as Node | null)?.range?.[0];
  for (const seg of segments) {
    if (isMap(current)) {
      const pair = current.items.find((p) => keyName(p.key) === seg);
      if (!pair) return keyNode?.range?.[0] ?? lastGood;
      keyNode = pair.key as Node;
      lastGood = keyNode.range?.[0] ?? lastGood;
      current = pair.value;
    } else if (isSeq(current)) {
      const item = current.items[Number(seg)];
      if (item === undefined) return lastGood;
      keyNode = item as Node;
      current = item;
      lastGood = (item as Node).range?.[0] ?? lastGood;
    } else {
      return lastGood;
    }
  }
  if (anchor === 'key') return keyNode?.range?.[0] ?? lastGood;
  const valueNode = current as Node | null | undefined;
  const range = valueNode?.range;
  // `digest:` with nothing after it yields an empty null scalar; point at the key instead.
  if (!range || range[1] <= range[0]) return keyNode?.range?.[0] ?? lastGood;
  return range[0];
}

/** Path of the mapping key at `offset` (for duplicate-key errors, which come without one). */
function duplicateKeyPath(doc: Document, offset: number): string[] {
  const path: string[] = [];
  let current: unknown = doc.contents;
  for (;;) {
    if (isMap(current)) {
      let next: unknown;
      for (const pair of current.items) {
        const key = pair.key as Node | null;
        if (key?.range && key.range[0] === offset) return [...path, keyName(key) ?? ''];
        const value = pair.value as Node | null;
        if (value?.range && value.range[0] <= offset && offset < value.range[2]) {
          path.push(keyName(key) ?? '');
          next = value;
          break;
        }
      }
      if (next === undefined) return path;
      current = next;
    } else if (isSeq(current)) {
      const index = current.items.findIndex((item) => {
        const r = (item as Node).range;
        return r && r[0] <= offset && offset < r[2];
      });
      if (index < 0) return path;
      path.push(String(index));
      current = current.items[index];
    } else if (isPair(current)) {
      current = current.value;
    } else {
      return path;
    }
  }
}

export function formatPath(segments: string[]): string {
  let out = '';
  for (const seg of segments) {
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

function yamlMessage(code: string, message: string): string {
  switch (code) {
    case 'TAB_AS_INDENT':
      return 'tabs are not allowed as indentation; indent with spaces';
    case 'MULTIPLE_DOCS':
      return 'the file holds more than one YAML document (---); keep one document per file';
    case 'MISSING_CHAR':
      return `${message.charAt(0).toLowerCase()}${message.slice(1)}`;
    default:
      return `${message.charAt(0).toLowerCase()}${message.slice(1)}`;
  }
}

// ---------------------------------------------------------------------------------------------------
// ajv errors → sentences

interface Finding {
  segments: string[];
  anchor: 'value' | 'key';
  message: string;
  rule: string;
}

function pointerSegments(pointer: string): string[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * ajv reports every branch of a failed `oneOf`. Keep only the branch the input most resembles (the
 * one whose discriminator matched, then the one with the fewest and mildest errors).
 */
function collapseOneOf(errors: ErrorObject[]): ErrorObject[] {
  let remaining = [...errors];
  const oneOfs = errors.filter((e) => e.keyword === 'oneOf').sort((a, b) => a.schemaPath.length - b.schemaPath.length);
  for (const oneOf of oneOfs) {
    if (!remaining.includes(oneOf)) continue;
    const prefix = `${oneOf.schemaPath}/`;
    const byBranch = new Map<number, ErrorObject[]>();
    for (const e of remaining) {
      if (!e.schemaPath.startsWith(prefix)) continue;
      const index = Number(e.schemaPath.slice(prefix.length).split('/')[0]);
      byBranch.set(index, [...(byBranch.get(index) ?? []), e]);
    }
    const passing = (oneOf.params as { passingSchemas?: number[] | null }).passingSchemas;
    if (passing || byBranch.size === 0) continue; // "matches more than one": keep the oneOf error itself

    const branchErrors = [...byBranch.values()];
    // Every branch refuses the value of one discriminator field (`type: cloud`): one enum sentence.
    const discriminator = (list: ErrorObject[]) => list.find((e) => e.keyword === 'const' && e.instancePath.startsWith(`${oneOf.instancePath}/`));
    const firstConst = discriminator(branchErrors[0]!);
    if (byBranch.size > 1 && firstConst && branchErrors.every((list) => discriminator(list)?.instancePath === firstConst.instancePath)) {
      const allowed = branchErrors.map((list) => (discriminator(list)!.params as { allowedValue: unknown }).allowedValue);
      const merged: ErrorObject = { ...firstConst, keyword: 'enum', params: { allowedValues: allowed } };
      remaining = remaining.filter((e) => e !== oneOf && !e.schemaPath.startsWith(prefix));
      remaining.push(merged);
      continue;
    }
    // Every branch wants a different type for the value itself: one sentence listing the types.
    const onlyTypeErrors = branchErrors.every((list) => list.every((e) => e.keyword === 'type' && e.instancePath === oneOf.instancePath));
    if (onlyTypeErrors) {
      const types = [...new Set(branchErrors.flat().flatMap((e) => [(e.params as { type: string | string[] }).type].flat()))];
      const merged: ErrorObject = { ...branchErrors[0]![0]!, params: { type: types } };
      remaining = remaining.filter((e) => e !== oneOf && !e.schemaPath.startsWith(prefix));
      remaining.push(merged);
      continue;
    }

    const score = (list: ErrorObject[]) =>
      list.reduce((sum, e) => {
        if (e.keyword === 'const' || e.keyword === 'enum') return sum + (e.instancePath === oneOf.instancePath ? 50 : 100);
        if (e.keyword === 'type' && e.instancePath === oneOf.instancePath) return sum + 50;
        if (e.keyword === 'additionalProperties') return sum + 3;
        if (e.keyword === 'required') return sum + 2;
        return sum + 1;
      }, 0);
    let best = -1;
    let bestScore = Infinity;
    for (const [index, list] of [...byBranch.entries()].sort((a, b) => a[0] - b[0])) {
      const s = score(list);
      if (s < bestScore) {
        best = index;
        bestScore = s;
      }
    }
    const keepPrefix = `${prefix}${best}/`;
    remaining = remaining.filter((e) => e !== oneOf && (!e.schemaPath.startsWith(prefix) || e.schemaPath.startsWith(keepPrefix)));
  }
  return remaining;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping (key: value)',
  array: 'a list',
  null: 'empty',
};

function typeWords(type: string | string[]): string {
  const list = [type].flat().map((t) => TYPE_WORDS[t] ?? t);
  return list.length <= 1 ? (list[0] ?? '') : `${list.slice(0, -1).join(', ')} or ${list[list.length - 1]}`;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  const json = JSON.stringify(value);
  const shown = json.length > 80 ? `${json.slice(0, 77)}...` : json;
  return shown;
}

function orList(values: unknown[]): string {
  const shown = values.map((v) => JSON.stringify(v));
  return shown.length <= 1 ? (shown[0] ?? '') : `${shown.slice(0, -1).join(', ')} or ${shown[shown.length - 1]}`;
}

function levenshtein(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

function suggestion(name: string, allowed: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of allowed) {
    const d = levenshtein(name, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

function patternMessage(pattern: string, value: unknown): string {
  const got = describeValue(value);
  if (pattern === DIGEST_PATTERN) {
    const looksLikeTag = typeof value === 'string' && !value.startsWith('sha256:');
    return `must be a sha256 digest (sha256:<64 hex>), got ${got}${looksLikeTag ? '; a tag is never deployed, pin the image by its digest' : ''}`;
  }
  if (pattern === DURATION_PATTERN) return `must be a duration such as 30s, 5m, 1h30m or 250ms, got ${got}`;
  if (pattern === NAME_PATTERN) {
    return `must be a name of lowercase letters, digits and '-', starting and ending with a letter or digit, got ${got}`;
  }
  if (pattern === '^/') return `must be a path starting with "/", got ${got}`;
  return `must match ${pattern}, got ${got}`;
}

function explain(errors: ErrorObject[], kind: FileKind): Finding[] {
  const findings: Finding[] = [];
  for (const e of errors) {
    const segments = pointerSegments(e.instancePath);
    const params = e.params as Record<string, unknown>;
    const value = e.data;
    switch (e.keyword) {
      case 'required': {
        const missing = String(params.missingProperty);
        findings.push({
          segments: [...segments, missing],
          anchor: 'key',
          message: `required field ${JSON.stringify(missing)} is missing${segments.length ? ` in ${formatPath(segments)}` : ''}`,
          rule: 'required',
        });
        break;
      }
      case 'additionalProperties': {
        const field = String(params.additionalProperty);
        const allowed = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
        const hint = suggestion(field, allowed);
        findings.push({
          segments: [...segments, field],
          anchor: 'key',
          message:
            `unknown field ${JSON.stringify(field)}` +
            (hint ? ` (did you mean ${JSON.stringify(hint)}?)` : '') +
            (allowed.length ? `; allowed fields: ${allowed.join(', ')}` : '; no fields are allowed here'),
          rule: 'additionalProperties',
        });
        break;
      }
      case 'type':
        findings.push({ segments, anchor: 'value', message: `must be ${typeWords(params.type as string | string[])}, got ${describeValue(value)}`, rule: 'type' });
        break;
      case 'pattern':
        findings.push({ segments, anchor: 'value', message: patternMessage(String(params.pattern), value), rule: 'pattern' });
        break;
      case 'const': {
        const field = segments[segments.length - 1];
        const why = field === 'kind' && segments.length === 1 ? ` (this file is read as a ${kind})` : '';
        findings.push({ segments, anchor: 'value', message: `must be ${JSON.stringify(params.allowedValue)}${why}, got ${describeValue(value)}`, rule: 'const' });
        break;
      }
      case 'enum':
        findings.push({ segments, anchor: 'value', message: `must be one of ${orList(params.allowedValues as unknown[])}, got ${describeValue(value)}`, rule: 'enum' });
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        findings.push({ segments, anchor: 'value', message: `must be ${String(params.comparison)} ${String(params.limit)}, got ${describeValue(value)}`, rule: e.keyword });
        break;
      case 'minLength':
        findings.push({
          segments,
          anchor: 'value',
          message: Number(params.limit) === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters long`,
          rule: e.keyword,
        });
        break;
      case 'maxLength':
        findings.push({ segments, anchor: 'value', message: `must be at most ${String(params.limit)} characters long`, rule: e.keyword });
        break;
      case 'minItems':
        findings.push({
          segments,
          anchor: 'value',
          message: Number(params.limit) === 1 ? 'must list at least one entry' : `must list at least ${String(params.limit)} entries`,
          rule: e.keyword,
        });
        break;
      case 'maxItems':
        findings.push({ segments, anchor: 'value', message: `must list at most ${String(params.limit)} entries`, rule: e.keyword });
        break;
      case 'uniqueItems': {
        const list = value as unknown[];
        const j = Number(params.j);
        findings.push({
          segments: [...segments, String(Number(params.i))],
          anchor: 'value',
          message: `${describeValue(list?.[j])} is listed twice (entries ${j} and ${String(params.i)}); list each once`,
          rule: e.keyword,
        });
        break;
      }
      case 'minProperties':
      case 'maxProperties': {
        const allowed = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
        const present = value && typeof value === 'object' ? Object.keys(value) : [];
        const limit = Number(params.limit);
        if (limit === 1 && allowed.length > 0) {
          findings.push({
            segments,
            anchor: 'value',
            message: `must set exactly one of ${allowed.join(', ')}, got ${present.length ? present.join(' and ') : 'none'}`,
            rule: e.keyword,
          });
        } else {
          findings.push({ segments, anchor: 'value', message: `must have ${String(params.comparison)} ${limit} fields`, rule: e.keyword });
        }
        break;
      }
      case 'format':
        findings.push({
          segments,
          anchor: 'value',
          message:
            params.format === 'date-time'
              ? `must be an RFC 3339 date-time with an offset such as 2026-01-31T09:00:00Z, got ${describeValue(value)}`
              : `must be a valid ${String(params.format)}, got ${describeValue(value)}`,
          rule: e.keyword,
        });
        break;
      case 'oneOf':
        findings.push({ segments, anchor: 'value', message: 'matches more than one of the allowed forms; keep the fields of only one', rule: 'oneOf' });
        break;
      default:
        findings.push({ segments, anchor: 'value', message: e.message ?? `breaks rule ${e.keyword}`, rule: e.keyword });
    }
  }
  return findings;
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.line}:${p.column}:${p.path}:${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------
// Rules a JSON Schema cannot express

export function isValidTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const LOCAL_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/;

/** `2026-12-20T00:00` → comparable number (minutes resolution is enough), or undefined if not a real local date-time. */
function localDateTime(s: string): number | undefined {
  const m = LOCAL_DATE_TIME.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1).map((x) => Number(x ?? 0)) as number[];
  const t = Date.UTC(y!, mo! - 1, d!, h!, mi!, se!);
  const back = new Date(t);
  if (back.getUTCMonth() !== mo! - 1 || back.getUTCDate() !== d! || h! > 23 || mi! > 59 || se! > 59) return undefined;
  return t;
}

type Loose = Record<string, unknown>;
const obj = (v: unknown): Loose | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Loose) : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Names in `items[*].name` must be unique (freeze windows, trust keys, pipeline stages). */
function uniqueNames(items: unknown[], base: string[], what: string): Finding[] {
  const findings: Finding[] = [];
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const name = str(obj(item)?.name);
    if (name === undefined) return;
    const first = seen.get(name);
    if (first !== undefined) {
      findings.push({ segments: [...base, String(i), 'name'], anchor: 'value', message: `${what} name ${JSON.stringify(name)} is already used by entry ${first}; names must be unique`, rule: 'unique-name' });
    } else seen.set(name, i);
  });
  return findings;
}

/**
 * Rules a JSON Schema cannot say. They run even when the schema found problems (all problems at once),
 * so every check reads the data defensively and skips what is not the right shape.
 */
function semanticFindings(kind: FileKind, data: unknown): Finding[] {
  const findings: Finding[] = [];
  const spec = obj(obj(data)?.spec);
  if (!spec) return findings;
  switch (kind) {
    case 'Service': {
      const steps = list(obj(obj(spec.strategy)?.canary)?.steps);
      if (Array.isArray(obj(obj(spec.strategy)?.canary)?.steps) && steps.length > 0) {
        let lastWeightIndex = -1;
        steps.forEach((step, i) => {
          if (typeof obj(step)?.setWeight === 'number') lastWeightIndex = i;
        });
        const base = ['spec', 'strategy', 'canary', 'steps'];
        if (lastWeightIndex < 0) {
          findings.push({ segments: base, anchor: 'key', message: 'canary steps never set a weight; end them with `- setWeight: 100` so the new version takes all traffic', rule: 'canary-reaches-100' });
        } else {
          const last = obj(steps[lastWeightIndex])!.setWeight as number;
          if (last !== 100) {
            findings.push({
              segments: [...base, String(lastWeightIndex), 'setWeight'],
              anchor: 'value',
              message: `canary steps end at weight ${last} and never reach 100; add \`- setWeight: 100\` as the last weight step so the new version takes all traffic`,
              rule: 'canary-reaches-100',
            });
          }
        }
      }
      const seenQuantiles = new Map<number, number>();
      list(obj(spec.slos)?.latency).forEach((limit, i) => {
        const quantile = obj(limit)?.quantile;
        if (typeof quantile !== 'number') return;
        const first = seenQuantiles.get(quantile);
        if (first !== undefined) {
          findings.push({ segments: ['spec', 'slos', 'latency', String(i), 'quantile'], anchor: 'value', message: `quantile ${quantile} already has a limit (entry ${first}); keep one limit per quantile`, rule: 'unique-quantile' });
        } else seenQuantiles.set(quantile, i);
      });
      break;
    }
    case 'FreezeWindows': {
      const windows = list(spec.windows);
      findings.push(...uniqueNames(windows, ['spec', 'windows'], 'window'));
      windows.forEach((item, i) => {
        const w = obj(item);
        if (!w) return;
        const base = ['spec', 'windows', String(i)];
        const timeZone = str(w.timeZone);
        if (timeZone && !isValidTimeZone(timeZone)) {
          findings.push({ segments: [...base, 'timeZone'], anchor: 'value', message: `unknown time zone ${JSON.stringify(timeZone)}; use an IANA name such as Europe/Berlin or UTC`, rule: 'time-zone' });
        }
        const cron = str(w.cron);
        if (cron !== undefined) {
          const fields = cron.trim().split(/\s+/);
          let error: string | undefined;
          if (fields.length !== 5) error = `must be a five-field cron expression (minute hour day-of-month month day-of-week), got ${JSON.stringify(cron)}`;
          else {
            try {
              CronExpressionParser.parse(cron, { tz: timeZone && isValidTimeZone(timeZone) ? timeZone : 'UTC', strict: false });
            } catch (err) {
              error = `is not a valid cron expression (${(err as Error).message}), got ${JSON.stringify(cron)}`;
            }
          }
          if (error) findings.push({ segments: [...base, 'cron'], anchor: 'value', message: error, rule: 'cron' });
        }
        const startText = str(w.start);
        const endText = str(w.end);
        const start = startText === undefined ? undefined : localDateTime(startText);
        const end = endText === undefined ? undefined : localDateTime(endText);
        if (startText !== undefined && start === undefined) findings.push({ segments: [...base, 'start'], anchor: 'value', message: `must be a local date-time YYYY-MM-DDTHH:MM (in timeZone), got ${JSON.stringify(startText)}`, rule: 'local-date-time' });
        if (endText !== undefined && end === undefined) findings.push({ segments: [...base, 'end'], anchor: 'value', message: `must be a local date-time YYYY-MM-DDTHH:MM (in timeZone), got ${JSON.stringify(endText)}`, rule: 'local-date-time' });
        if (start !== undefined && end !== undefined && end <= start) {
          findings.push({ segments: [...base, 'end'], anchor: 'value', message: `must be after start (${startText}), got ${JSON.stringify(endText)}`, rule: 'window-order' });
        }
      });
      break;
    }
    case 'Slipway':
      findings.push(...uniqueNames(list(obj(spec.trust)?.keys), ['spec', 'trust', 'keys'], 'key'));
      break;
    case 'Pipeline':
      findings.push(...uniqueNames(list(spec.stages), ['spec', 'stages'], 'stage'));
      break;
    case 'Environment':
    case 'Quarantine':
      break;
  }
  return findings;
}
