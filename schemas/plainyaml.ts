/**
 * The fast path of validation: YAML text → JavaScript value from yaml's own token tree (CST), without
 * composing a Document.
 *
 * Why: composing yaml's Document (a node object with source ranges per key and value, then `toJS`) is
 * about half of parsing a file, and its positions are only needed when a file has problems. Files in
 * an environments repository are plain block mappings of scalars, lists and short flow lists, so for
 * those this builds the value straight from the tokens yaml's Parser produced, resolving every
 * scalar with yaml's own functions (`CST.resolveAsScalar`, the core schema's tags).
 *
 * It is deliberately narrow: anything it is not sure yaml would accept without a single error or
 * warning — anchors, aliases, tags, explicit keys, directives, several documents, multi-line plain or
 * quoted scalars, multi-line or nested flow collections, flow mappings, non-string or duplicate keys,
 * tabs, carriage returns, misplaced comments — makes it return undefined, and the caller parses the
 * full Document (the slow path), which also reports every problem with its position. The test
 * test/schemas/plainyaml.test.ts holds both paths to the same value on a corpus of valid and broken
 * files.
 */
import { CST, isScalar, Parser, Schema } from './yaml.js';

type Token = CST.Token;
type SourceToken = CST.SourceToken;

/** Thrown inside the walk when the text leaves the subset; caught at the top. */
const BAIL = Symbol('not plain');

/** The core schema's scalar tags, in yaml's order of precedence (null, bool, int, float; else string). */
let coreTags: { test: RegExp; resolve: (value: string, onError: (msg: string) => void, options: object) => unknown }[] | undefined;
const RESOLVE_OPTIONS = { intAsBigInt: false };

function scalarTags(): NonNullable<typeof coreTags> {
  coreTags ??= (new Schema({}).tags as { default?: boolean | 'key'; test?: RegExp; resolve: (value: string, onError: (msg: string) => void, options: object) => unknown }[])
    .filter((tag) => tag.default === true && tag.test instanceof RegExp)
    .map((tag) => ({ test: tag.test!, resolve: tag.resolve }));
  return coreTags;
}

function bail(): never {
  throw BAIL;
}

/** Whitespace, newlines and comments only; a comment must follow white space unless it opens the list on a new line. */
function checkTrivia(tokens: readonly SourceToken[] | undefined, commentMayLead: boolean): void {
  if (!tokens) return;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.type === 'space' || t.type === 'newline') continue;
    if (t.type !== 'comment') bail();
    const before = i === 0 ? undefined : tokens[i - 1]!.type;
    if (before === undefined ? !commentMayLead : before !== 'space' && before !== 'newline') bail();
  }
}

function scalar(token: Token, atKey: boolean): unknown {
  if (token.type !== 'scalar' && token.type !== 'single-quoted-scalar' && token.type !== 'double-quoted-scalar' && token.type !== 'block-scalar') bail();
  if (token.type !== 'block-scalar' && token.source.includes('\n')) bail();
  let failed = false;
  const resolved = CST.resolveAsScalar(token, true, () => {
    failed = true;
  });
  if (!resolved || failed) bail();
  const text = resolved!.value;
  if (token.type !== 'scalar') return text;
  if (text.startsWith('@') || text.startsWith('`')) bail(); // reserved indicators: yaml reports these
  for (const tag of scalarTags()) {
    if (!tag.test.test(text)) continue;
    if (atKey) bail(); // a key that is not a string (`200:`, `true:`): the Document path decides
    const value = tag.resolve(text, () => bail(), RESOLVE_OPTIONS);
    return isScalar(value) ? value.value : value;
  }
  return text;
}

function node(token: Token | undefined): unknown {
  if (!token) return null; // `key:` or `-` with nothing after it
  switch (token.type) {
    case 'block-map':
      return blockMap(token);
    case 'block-seq':
      return blockSeq(token);
    case 'flow-collection':
      return flowSeq(token);
    default:
      return scalar(token, false);
  }
}

function blockMap(map: CST.BlockMap): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const items = map.items;
  for (let i = 0; i < items.length; i++) {
    const { start, key, sep, value } = items[i]!;
    checkTrivia(start, true);
    if (!key && !sep && !value) {
      if (i !== items.length - 1) bail(); // comment lines between entries: yaml keeps them as comments; stay safe
      continue;
    }
    if (!key || !sep) bail();
    if (!('indent' in key!) || key!.indent !== map.indent || key!.type === 'block-scalar') bail();
    if ('source' in key! && (key!.source.length > 1000 || key!.source.includes('\n'))) bail();
    const name = scalar(key!, true);
    if (typeof name !== 'string' || name === '__proto__' || name === '<<' || Object.prototype.hasOwnProperty.call(out, name)) bail();
    let indicators = 0;
    let newline = false;
    for (let j = 0; j < sep!.length; j++) {
      const t = sep![j]!;
      if (t.type === 'map-value-ind') indicators++;
      else if (t.type === 'newline') newline = true;
      else if (t.type === 'comment') {
        const before = j === 0 ? undefined : sep![j - 1]!.type;
        if (before !== 'space' && before !== 'newline') bail();
      } else if (t.type !== 'space') bail();
    }
    if (indicators !== 1 || sep![0]!.type !== 'map-value-ind') bail();
    if (value?.type === 'block-map' && !newline) bail(); // `a: b: c`
    out[name as string] = node(value);
  }
  return out;
}

function blockSeq(seq: CST.BlockSequence): unknown[] {
  const out: unknown[] = [];
  const items = seq.items;
  for (let i = 0; i < items.length; i++) {
    const { start, value } = items[i]!;
    let indicators = 0;
    for (let j = 0; j < start.length; j++) {
      const t = start[j]!;
      if (t.type === 'seq-item-ind') indicators++;
      else if (t.type === 'comment') {
        const before = j === 0 ? 'newline' : start[j - 1]!.type;
        if (before !== 'space' && before !== 'newline') bail();
      } else if (t.type !== 'space' && t.type !== 'newline') bail();
    }
    if (indicators === 0) {
      if (value || i !== items.length - 1) bail();
      continue;
    }
    if (indicators !== 1) bail();
    out.push(node(value));
  }
  return out;
}

/** `[a, "b", 3]` on one line: scalars separated by single commas. */
function flowSeq(flow: CST.FlowCollection): unknown[] {
  if (flow.start.type !== 'flow-seq-start') bail();
  const end = flow.end;
  if (end.length === 0 || end[0]!.type !== 'flow-seq-end') bail();
  checkTrivia(end.slice(1), false);
  if (end.slice(1).some((t) => t.type === 'comment') && end[1]?.type !== 'space') bail();
  const out: unknown[] = [];
  flow.items.forEach(({ start, key, sep, value }, i) => {
    if (key || sep || !value) bail();
    let commas = 0;
    for (const t of start) {
      if (t.type === 'comma') commas++;
      else if (t.type !== 'space') bail();
    }
    if (commas !== (i === 0 ? 0 : 1)) bail();
    if ('end' in value! && value!.end?.some((t) => t.type !== 'space')) bail();
    out.push(scalar(value!, false));
  });
  return out;
}

/**
 * The value of a YAML text that is one block mapping in the plain subset (see above), or undefined
 * when the full Document must be composed to know (the value, or the problems and where they are).
 */
export function parsePlainYaml(text: string): Record<string, unknown> | undefined {
  if (text.includes('\t') || text.includes('\r')) return undefined;
  try {
    let doc: CST.Document | undefined;
    for (const token of new Parser().parse(text)) {
      if (token.type === 'document') {
        if (doc) return undefined;
        doc = token;
      } else if (token.type !== 'comment' && token.type !== 'newline' && token.type !== 'space') return undefined;
      else if (doc) return undefined; // anything after the document is for the Document path to judge
    }
    if (!doc || doc.value?.type !== 'block-map') return undefined;
    checkTrivia(doc.start, true);
    checkTrivia(doc.end, true);
    return blockMap(doc.value);
  } catch (err) {
    if (err === BAIL) return undefined;
    throw err;
  }
}
