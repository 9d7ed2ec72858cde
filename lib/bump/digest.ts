/**
 * Renovate-style digest bump: a pure `update(content, change) → content` that edits
 * `spec.image.digest` (and, when asked, `spec.image.repository`) of a service file in place.
 *
 * The `yaml` Document API finds the scalar nodes and their source ranges; the new value is spliced into
 * the original text at that range, keeping the node's quoting style. Every other byte (comments, key
 * order, blank lines, indentation, line endings) is untouched, so the git diff is one line.
 */
import { isMap, isScalar, parseDocument, Scalar, type Document } from 'yaml';
import { SlipwayError } from '../errors.js';

export const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;

export interface BumpRequest {
  digest: string;
  /** Also set `spec.image.repository` (when an image moves between registries). */
  repository?: string;
}

export type BumpStatus = 'updated' | 'already-updated';

export interface BumpResult {
  content: string;
  status: BumpStatus;
  /** The digest the file carried before (undefined when it had none). */
  previousDigest?: string;
  previousRepository?: string;
}

export function assertDigest(digest: string): void {
  if (!SHA256_DIGEST.test(digest)) {
    throw new SlipwayError(
      'BAD_DIGEST',
      `"${digest}" is not a full sha256 digest (expected sha256: followed by 64 lowercase hex characters); a tag is never deployed`,
      'stalling',
      { digest },
    );
  }
}

export function parseServiceDocument(content: string, file = 'service.yaml'): Document.Parsed {
  const doc = parseDocument(content, { keepSourceTokens: false, prettyErrors: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    const [line, col] = err.linePos?.[0] ? [err.linePos[0].line, err.linePos[0].col] : [1, 1];
    throw new SlipwayError('BAD_YAML', `${file}:${line}:${col} ${err.message.split('\n')[0]}`, 'stalling', {
      file,
      line,
      column: col,
    });
  }
  return doc;
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

/** The source text of a scalar with the same quoting style as `node`. */
function renderLike(node: Scalar, value: string): string {
  switch (node.type) {
    case Scalar.QUOTE_DOUBLE:
      return JSON.stringify(value);
    case Scalar.QUOTE_SINGLE:
      return `'${value.replace(/'/g, "''")}'`;
    default:
      // A plain scalar stays plain when the value is safe as one (digests and registry paths are).
      return /^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$/.test(value) ? value : JSON.stringify(value);
  }
}

function scalarEdit(doc: Document.Parsed, path: string[], value: string, file: string): Edit | 'missing' | null {
  const node = doc.getIn(path, true);
  if (node === undefined) return 'missing';
  if (!isScalar(node) || !node.range) {
    throw new SlipwayError('NOT_A_SCALAR', `${file}: ${path.join('.')} must be a plain string value to be bumped`, 'stalling', {
      file,
      path: path.join('.'),
    });
  }
  if (node.value === value) return null;
  if (node.type === Scalar.BLOCK_FOLDED || node.type === Scalar.BLOCK_LITERAL) {
    throw new SlipwayError('NOT_A_SCALAR', `${file}: ${path.join('.')} is a block scalar; write it on one line to let Slipway bump it`, 'stalling', {
      file,
      path: path.join('.'),
    });
  }
  return { start: node.range[0], end: node.range[1], text: renderLike(node, value) };
}

/**
 * Set `spec.image.digest` to `request.digest`. Re-running on a bumped file returns
 * `already-updated` with the content unchanged. Refuses anything but a full sha256 digest.
 */
export function bumpDigest(content: string, request: BumpRequest, file = 'service.yaml'): BumpResult {
  assertDigest(request.digest);
  const doc = parseServiceDocument(content, file);
  const image = doc.getIn(['spec', 'image'], true);
  if (image !== undefined && !isMap(image)) {
    throw new SlipwayError('NOT_A_MAP', `${file}: spec.image must be a mapping with repository and digest`, 'stalling', { file });
  }
  const previousDigest = stringAt(doc, ['spec', 'image', 'digest']);
  const previousRepository = stringAt(doc, ['spec', 'image', 'repository']);

  const edits: Edit[] = [];
  let needsRestringify = false;
  const digestEdit = scalarEdit(doc, ['spec', 'image', 'digest'], request.digest, file);
  if (digestEdit === 'missing') needsRestringify = true;
  else if (digestEdit) edits.push(digestEdit);
  if (request.repository !== undefined) {
    const repoEdit = scalarEdit(doc, ['spec', 'image', 'repository'], request.repository, file);
    if (repoEdit === 'missing') needsRestringify = true;
    else if (repoEdit) edits.push(repoEdit);
  }

  if (!needsRestringify && edits.length === 0) {
    return { content, status: 'already-updated', previousDigest, previousRepository };
  }

  let next: string;
  if (needsRestringify) {
    // The key does not exist yet: the only case where the document is re-serialised (comments stay).
    doc.setIn(['spec', 'image', 'digest'], request.digest);
    if (request.repository !== undefined) doc.setIn(['spec', 'image', 'repository'], request.repository);
    next = doc.toString();
  } else {
    next = content;
    for (const e of edits.sort((a, b) => b.start - a.start)) next = next.slice(0, e.start) + e.text + next.slice(e.end);
  }

  // The edit must read back as exactly the requested values; anything else is a bug, never written.
  const check = parseServiceDocument(next, file);
  if (stringAt(check, ['spec', 'image', 'digest']) !== request.digest) {
    throw new SlipwayError('BUMP_FAILED', `${file}: the bumped file does not read back the new digest`, 'generic', { file });
  }
  if (request.repository !== undefined && stringAt(check, ['spec', 'image', 'repository']) !== request.repository) {
    throw new SlipwayError('BUMP_FAILED', `${file}: the bumped file does not read back the new repository`, 'generic', { file });
  }
  return { content: next, status: 'updated', previousDigest, previousRepository };
}

/** Read `spec.image.digest` of a service file (undefined when absent). */
export function readDigest(content: string, file = 'service.yaml'): string | undefined {
  return stringAt(parseServiceDocument(content, file), ['spec', 'image', 'digest']);
}

export function readRepository(content: string, file = 'service.yaml'): string | undefined {
  return stringAt(parseServiceDocument(content, file), ['spec', 'image', 'repository']);
}

function stringAt(doc: Document.Parsed, path: string[]): string | undefined {
  const v: unknown = doc.getIn(path);
  return typeof v === 'string' ? v : undefined;
}
