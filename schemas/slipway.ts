import { envelope, type Document } from './common.js';

/** `slipway.yaml`: environments in promotion order and the trust policy. */
export const slipwaySchema = envelope('Slipway', {
  type: 'object',
  additionalProperties: false,
  required: ['environments', 'trust'],
  properties: {
    environments: {
      description: 'Environment names in promotion order (first = where builds land).',
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { $ref: '#/$defs/name' },
    },
    deployableBranches: {
      description: 'Source branches whose builds are proposed to the first environment. Default: [main].',
      type: 'array',
      items: { type: 'string', minLength: 1 },
    },
    trust: {
      type: 'object',
      additionalProperties: false,
      required: ['keys', 'builders', 'sources'],
      properties: {
        keys: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'publicKey'],
            properties: {
              name: { $ref: '#/$defs/name' },
              publicKey: { description: 'Path in this repository of a PEM public key (ECDSA P-256).', type: 'string', minLength: 1 },
              validFrom: { type: 'string', format: 'date-time' },
              validUntil: { type: 'string', format: 'date-time' },
            },
          },
        },
        builders: {
          description: 'Trusted builder ids (runDetails.builder.id).',
          type: 'array',
          minItems: 1,
          items: { type: 'string', minLength: 1 },
        },
        sources: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['repo'],
            properties: {
              repo: { description: 'Source repository URI; `*` matches any run of characters.', type: 'string', minLength: 1 },
              branches: { type: 'array', items: { type: 'string', minLength: 1 }, default: ['main'] },
              services: { type: 'array', items: { type: 'string', minLength: 1 }, default: ['*'] },
            },
          },
        },
      },
    },
  },
});

export interface TrustedKey {
  name: string;
  publicKey: string;
  validFrom?: string;
  validUntil?: string;
}

export interface AllowedSource {
  repo: string;
  branches?: string[];
  services?: string[];
}

export interface TrustPolicy {
  keys: TrustedKey[];
  builders: string[];
  sources: AllowedSource[];
}

export interface SlipwaySpec {
  environments: string[];
  deployableBranches?: string[];
  trust: TrustPolicy;
}

export type SlipwayConfig = Document<'Slipway', SlipwaySpec>;
