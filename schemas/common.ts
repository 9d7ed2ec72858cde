/** Pieces shared by every Slipway file schema (JSON Schema 2020-12). */

export const API_VERSION = 'slipway.dev/v1';

export const DIGEST_PATTERN = '^sha256:[a-f0-9]{64}$';
export const DURATION_PATTERN = '^([0-9]+(ms|s|m|h|d))+$';
export const NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

export const defs = {
  name: { type: 'string', pattern: NAME_PATTERN, maxLength: 63 },
  digest: { type: 'string', pattern: DIGEST_PATTERN },
  duration: { type: 'string', pattern: DURATION_PATTERN },
  timeZone: { type: 'string', minLength: 1 },
  stringMap: { type: 'object', additionalProperties: { type: 'string' } },
  metadata: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { $ref: '#/$defs/name' },
      labels: { $ref: '#/$defs/stringMap' },
      annotations: { $ref: '#/$defs/stringMap' },
    },
  },
} as const;

/** The envelope every file shares: apiVersion, kind, metadata, spec. */
export function envelope(kind: string, spec: object, opts: { metadataRequired?: boolean } = {}) {
  const required = ['apiVersion', 'kind', 'spec'];
  if (opts.metadataRequired !== false) required.push('metadata');
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `https://slipway.dev/schemas/v1/${kind}`,
    title: kind,
    type: 'object',
    additionalProperties: false,
    required,
    properties: {
      apiVersion: { const: API_VERSION },
      kind: { const: kind },
      metadata: { $ref: '#/$defs/metadata' },
      spec,
    },
    $defs: defs,
  };
}

export interface Metadata {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface Document<K extends string, S> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: Metadata;
  spec: S;
}

/** `30s`, `5m`, `1h30m`, `250ms`, `2d`. */
export type Duration = string;
/** Always a full `sha256:<64 hex>` digest; a tag is never deployed. */
export type Digest = string;
