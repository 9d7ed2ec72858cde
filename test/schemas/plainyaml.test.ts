/**
 * The fast path (plainyaml.ts: value straight from yaml's tokens) against the slow path (yaml's full
 * Document): whenever the fast path answers, the Document must parse the same text without a single
 * error or warning and to the same value; and validateFile must report the same problems either way.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { parsePlainYaml } from '../../schemas/plainyaml.js';
import { validateFile, type FileKind } from '../../schemas/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function yamlFilesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = join(dir, e.name);
    if (e.isDirectory()) return yamlFilesUnder(full);
    return /\.ya?ml$/.test(e.name) && statSync(full).size < 100_000 ? [full] : [];
  });
}

const repoFiles = [...yamlFilesUnder(join(ROOT, 'environments')), ...yamlFilesUnder(join(ROOT, 'examples'))].map((f) => readFileSync(f, 'utf8'));

const SERVICE = `apiVersion: slipway.dev/v1
kind: Service
metadata:
  name: web   # the service
  labels:
    team: "payments"
    tier: 'front'
spec:
  image:
    repository: registry.internal:5000/web
    # bumped by the builder
    digest: sha256:${'a'.repeat(64)}
  replicas: 2
  port: 8080
  healthPath: /healthz
  env:
    LOG_LEVEL: info
    EMPTY: ""
    QUOTED_NUMBER: "3"
  strategy:
    canary:
      steps:
        - setWeight: 10
        - analysis:
            interval: 30s
            count: 3
        - pause:
            duration: 2m
        - setWeight: 100
  slos:
    maxErrorRate: 0.01
    latency:
      - quantile: 0.99
        maxMs: 400
    compareToBaseline: true
`;

/** Texts the fast path may or may not take; each is held to the rule above. */
const tricky = [
  SERVICE,
  'a: 1\nb: 0x10\nc: 0o17\nd: .inf\ne: -.5\nf: 1e3\ng: ~\nh: null\ni: True\nj: FALSE\nk: 012\nl: +3\nm: 1_000\n',
  'list: [a, "b", \'c\', 1, true, null]\nempty: []\nnested: [[a]]\nmap: {a: 1}\n',
  'a: |\n  line one\n  line two\nb: >-\n  folded\n  text\nc: |+\n  keep\n\n',
  'a: "esc\\tape \\u00e9 \\x41"\nb: \'it\'\'s\'\nc: "bad \\q escape"\n',
  'a: b: c\n',
  'a: 1\na: 2\n',
  '"a": 1\na: 2\n',
  '200: ok\n',
  'true: yes\n',
  'a: &x 1\nb: *x\n',
  'a: !!str 1\n',
  '? a\n: 1\n',
  '%YAML 1.2\n---\na: 1\n',
  '---\na: 1\n',
  'a: 1\n---\nb: 2\n',
  'a: 1\n...\n',
  'a: 1\n  b: 2\n',
  'a:\n  b: 1\n c: 2\n',
  'a:\n\tb: 1\n',
  'a: 1\r\nb: 2\r\n',
  'a: "unterminated\n',
  'a: [1, 2\n',
  'a: [1,, 2]\n',
  'a: [1, 2, ]\n',
  'a: [1, 2]x\n',
  'a: [1, 2] # comment\n',
  'a: [1, 2]# comment\n',
  'a: 1 # comment\n# last\n',
  '# first\n\na: 1\n',
  'a: 1\n# between\nb: 2\n',
  'a: "x"# glued comment\n',
  'a:# glued\n  b: 1\n',
  'a: multi\n  line plain\n',
  'a: "multi\n  line quoted"\n',
  '- a\n- b\n',
  'just a scalar\n',
  '',
  '# only a comment\n',
  '__proto__: 1\n',
  '<<: {a: 1}\n',
  'a: @reserved\n',
  'a: `reserved\n',
  'a:\n- x\n- y\n',
  'a:\n  -\n  - y\n',
  'a:\n  - - x\n    - y\n',
  'a:\n  - x\n  # comment\n  - y\n',
  'a: -1\nb: - 1\n',
  `k${'e'.repeat(1100)}: 1\n`,
  'a: 1\n\n\nb:\n\n  c: 2\n',
  'a: 1 #c\nb: 2\n',
  'a: "1"\nb: \'2\'\nc: 3\n',
];

/** Every single-character deletion, and a few insertions, of a valid file: many broken in small ways. */
function mutants(text: string, every: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += every) {
    out.push(text.slice(0, i) + text.slice(i + 1));
    for (const ch of [' ', ':', '\n', '-', '#', '"', '[', '&', '!', '\t']) out.push(text.slice(0, i) + ch + text.slice(i));
  }
  return out;
}

/** Deep equality that tells 1 from "1", null from missing, and NaN/Infinity apart (JSON.stringify does not). */
function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a !== typeof b) return false;
  if (a === null || b === null || typeof a !== 'object') return Object.is(a, b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function slowPath(text: string): { ok: boolean; value?: unknown } {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0 || doc.warnings.length > 0) return { ok: false };
  return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) };
}

describe('the plain-YAML fast path', () => {
  const corpus = [...repoFiles, ...tricky, ...mutants(SERVICE, 7), ...repoFiles.flatMap((t) => mutants(t, 19))];

  it('answers only for texts the full Document parses without an error or warning, and to the same value', () => {
    let answered = 0;
    const wrong: string[] = [];
    for (const text of corpus) {
      const fast = parsePlainYaml(text);
      if (fast === undefined) continue;
      answered++;
      const slow = slowPath(text);
      if (!slow.ok) wrong.push(`fast path accepted a text the Document rejects:\n${text}`);
      else if (!sameValue(fast, slow.value)) wrong.push(`different values for:\n${text}`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    // The point of the fast path: it does take the files of an environments repository.
    expect(answered).toBeGreaterThan(corpus.length / 4);
  });

  it('takes every file of the example environments repository and the example pipeline', () => {
    for (const text of repoFiles) expect(parsePlainYaml(text)).toEqual(slowPath(text).value);
  });

  it('takes a typical service file, comments, quoting, flow lists and all', () => {
    expect(parsePlainYaml(SERVICE)).toEqual(slowPath(SERVICE).value);
  });

  it.each([
    ['an anchor and alias', 'a: &x 1\nb: *x\n'],
    ['a tag', 'a: !!str 1\n'],
    ['a duplicate key', 'a: 1\na: 2\n'],
    ['a tab', 'a:\n\tb: 1\n'],
    ['a second document', 'a: 1\n---\nb: 2\n'],
    ['a flow mapping', 'a: {b: 1}\n'],
    ['a number as a key', '200: ok\n'],
  ])('leaves a text with %s to the full Document', (_what, text) => {
    expect(parsePlainYaml(text)).toBeUndefined();
  });
});

describe('validating a broken file', () => {
  const broken: [FileKind, string][] = [
    ['Service', SERVICE.replace(`sha256:${'a'.repeat(64)}`, 'latest').replace('replicas: 2', 'replicas: two').replace('port: 8080', 'port: 8080\n  unknownField: 1')],
    ['Service', SERVICE.replace('- setWeight: 100', '- setWeight: 90')],
    ['Service', SERVICE.replace('  port: 8080\n', '')],
    ['Service', SERVICE.replace('kind: Service', 'kind: Servic')],
    ['Service', `${SERVICE}spec: again\n`],
    ['Service', SERVICE.replace('  replicas: 2', '\treplicas: 2')],
    ['Service', SERVICE.replace('team: "payments"', 'team: "payments')],
    ['Environment', 'apiVersion: slipway.dev/v1\nkind: Environment\nmetadata:\n  name: prod\nspec:\n  target:\n    type: cloud\n'],
  ];

  it.each(broken.map(([kind, text], i) => [i, kind, text] as const))('reports the same problems on the fast and the slow path (case %i, %s)', (_i, kind, text) => {
    const fast = validateFile(kind, text, 'production/services/web.yaml');
    const slow = validateFile(kind, text, 'production/services/web.yaml', { fastPath: false });
    expect(fast.ok).toBe(false);
    expect(fast).toEqual(slow);
    if (!fast.ok) for (const p of fast.problems) expect(p.line).toBeGreaterThanOrEqual(1);
  });

  it('accepts a valid file on both paths with the same value', () => {
    const fast = validateFile('Service', SERVICE, 'web.yaml');
    const slow = validateFile('Service', SERVICE, 'web.yaml', { fastPath: false });
    expect(fast.ok).toBe(true);
    expect(fast).toEqual(slow);
  });
});
