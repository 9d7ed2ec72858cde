import { envelope, type Digest, type Document } from './common.js';

/** `quarantine.yaml` at the root of the environments repo: digests automation must never propose again. */
export const quarantineSchema = envelope(
  'Quarantine',
  {
    type: 'object',
    additionalProperties: false,
    required: ['digests'],
    properties: {
      digests: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['digest', 'reason'],
          properties: {
            digest: { $ref: '#/$defs/digest' },
            service: { type: 'string' },
            environment: { type: 'string' },
            reason: { type: 'string' },
            at: { type: 'string' },
            revertCommit: { type: 'string' },
          },
        },
      },
    },
  },
  { metadataRequired: false },
);

export interface QuarantineEntry {
  digest: Digest;
  service?: string;
  environment?: string;
  reason: string;
  at?: string;
  revertCommit?: string;
}

export type QuarantineConfig = Omit<Document<'Quarantine', { digests: QuarantineEntry[] }>, 'metadata'>;
