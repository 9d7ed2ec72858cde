/**
 * The two YAML edits a rollback makes, in place so comments and layout stay: write a digest back into a
 * service file, and add an entry to quarantine.yaml.
 */
import { isMap, isScalar, isSeq, parseDocument, YAMLMap, YAMLSeq, type Document } from 'yaml';
import { SlipwayError } from '../errors.js';
import { API_VERSION, type QuarantineEntry } from '../../schemas/index.js';

const DIGEST_PATH = ['spec', 'image', 'digest'] as const;

function parse(text: string, file: string): Document {
  const doc = parseDocument(text, { keepSourceTokens: false });
  if (doc.errors.length > 0) {
    throw new SlipwayError('INVALID_YAML', `${file}: ${doc.errors[0]!.message}; fix the file, then roll back again`, 'stalling', { file });
  }
  return doc;
}

/** `spec.image.digest` of a service file's text, or undefined when the file has none. */
export function digestOf(text: string, file: string): string | undefined {
  const node = parse(text, file).getIn(DIGEST_PATH, true);
  return isScalar(node) && typeof node.value === 'string' ? node.value : undefined;
}

/** Replace the digest scalar's source text only, so every other byte of the file stays as it was. */
export function writeDigest(text: string, digest: string, file: string): string {
  const node = parse(text, file).getIn(DIGEST_PATH, true);
  if (!isScalar(node) || typeof node.value !== 'string' || !node.range) {
    throw new SlipwayError('NO_DIGEST', `${file}: spec.image.digest is missing; cannot write ${digest} back`, 'stalling', { file, path: 'spec.image.digest' });
  }
  const [start, end] = node.range;
  const source = text.slice(start, end);
  const replacement = source.startsWith('"') ? JSON.stringify(digest) : source.startsWith("'") ? `'${digest}'` : digest;
  return text.slice(0, start) + replacement + text.slice(end);
}

/** Digests quarantine.yaml lists (empty when the file does not exist). */
export function quarantinedDigests(text: string | undefined, file = 'quarantine.yaml'): string[] {
  if (text === undefined) return [];
  const seq = parse(text, file).getIn(['spec', 'digests'], true);
  if (!isSeq(seq)) return [];
  return seq.items.flatMap((item) => {
    if (!isMap(item)) return [];
    const d = item.get('digest');
    return typeof d === 'string' ? [d] : [];
  });
}

/** quarantine.yaml with `entry` appended (the file is created when missing; a digest already listed is left alone). */
export function addQuarantineEntry(text: string | undefined, entry: QuarantineEntry, file = 'quarantine.yaml'): { text: string; added: boolean } {
  if (text === undefined || text.trim() === '') {
    const doc = parseDocument(
      '# Digests automation must never propose again. Slipway adds one on every rollback;\n# remove an entry (by a reviewed commit) to allow the digest again.\n',
    );
    doc.contents = doc.createNode({ apiVersion: API_VERSION, kind: 'Quarantine', spec: { digests: [entry] } }) as unknown as typeof doc.contents;
    return { text: doc.toString({ lineWidth: 0 }), added: true };
  }
  if (quarantinedDigests(text, file).includes(entry.digest)) return { text, added: false };
  const doc = parse(text, file);
  let seq = doc.getIn(['spec', 'digests'], true);
  if (!isSeq(seq)) {
    if (!isMap(doc.get('spec', true))) doc.set('spec', new YAMLMap());
    seq = new YAMLSeq();
    doc.setIn(['spec', 'digests'], seq);
  }
  (seq as YAMLSeq).items.push(doc.createNode(entry));
  return { text: doc.toString({ lineWidth: 0 }), added: true };
}
