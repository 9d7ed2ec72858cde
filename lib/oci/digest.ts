/** Digests, canonical JSON and image references: the small pure pieces every OCI user needs. */
import { createHash } from 'node:crypto';
import { SlipwayError } from '../errors.js';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function computeDigest(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value);
}

export function assertDigest(value: string, what = 'digest'): string {
  if (!isDigest(value)) {
    throw new SlipwayError('INVALID_DIGEST', `${what} "${value}" is not a full sha256 digest (sha256:<64 hex>)`, 'stalling', { value });
  }
  return value;
}

/** Throws DIGEST_MISMATCH unless `bytes` hash to `expected`. */
export function verifyDigest(bytes: Uint8Array, expected: string, what: string): void {
  const actual = computeDigest(bytes);
  if (actual !== expected) {
    throw new SlipwayError(
      'DIGEST_MISMATCH',
      `${what}: content does not match its digest (expected ${expected}, got ${actual}); refusing it`,
      'stalling',
      { expected, actual },
    );
  }
}

/** JSON with object keys sorted at every level and no whitespace: the same value gives the same bytes. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

export interface ImageRef {
  /** `host:port/name` or `oci:<path>`. */
  repository: string;
  digest?: string;
  tag?: string;
}

/**
 * `repo@sha256:…`, `repo:tag`, `repo:tag@sha256:…` or a bare `repo`, where repo is `host[:port]/name`
 * or `oci:<path>`. The port colon is told from a tag colon by the last `/`.
 */
export function parseImageRef(ref: string): ImageRef {
  const input = ref.trim();
  if (!input) throw invalidRef(ref, 'it is empty');
  let rest = input;
  let digest: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw invalidRef(ref, `"${digest}" is not a full sha256 digest`);
  }
  let tag: string | undefined;
  if (!rest.startsWith('oci:')) {
    const slash = rest.lastIndexOf('/');
    const colon = rest.lastIndexOf(':');
    if (colon > slash && slash >= 0) {
      tag = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
      if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(tag)) throw invalidRef(ref, `"${tag}" is not a valid tag`);
    }
    if (slash < 0) throw invalidRef(ref, 'a repository is host[:port]/name or oci:<path>');
  } else if (rest.length <= 4) {
    throw invalidRef(ref, 'oci: needs a directory path');
  }
  if (!rest) throw invalidRef(ref, 'the repository is missing');
  const out: ImageRef = { repository: rest };
  if (digest) out.digest = digest;
  if (tag) out.tag = tag;
  return out;
}

export function formatImageRef(repository: string, digest: string): string {
  return `${repository}@${digest}`;
}

function invalidRef(ref: string, why: string): SlipwayError {
  return new SlipwayError('INVALID_REFERENCE', `image reference "${ref}" is invalid: ${why}`, 'stalling', { ref });
}
