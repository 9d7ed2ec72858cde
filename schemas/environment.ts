import { envelope, type Document, type Duration } from './common.js';

export const analysisSettingsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    provider: { enum: ['builtin', 'prometheus'] },
    interval: { $ref: '#/$defs/duration' },
    failureLimit: { type: 'integer', minimum: 1 },
    inconclusiveLimit: { type: 'integer', minimum: 1 },
    minSamples: { type: 'integer', minimum: 1 },
    warmup: {
      description: "Traffic in the first warmup of every analysis step is not judged (a cold canary process is slower for its first requests). Default 0s.",
      $ref: '#/$defs/duration',
    },
    prometheus: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: { type: 'string', minLength: 1 },
        timeout: { $ref: '#/$defs/duration' },
        headers: { $ref: '#/$defs/stringMap' },
        queries: {
          type: 'object',
          additionalProperties: false,
          properties: {
            requests: { type: 'string' },
            errors: { type: 'string' },
            latencyQuantile: { type: 'string' },
          },
        },
      },
    },
  },
} as const;

export const environmentSchema = envelope('Environment', {
  type: 'object',
  additionalProperties: false,
  required: ['target'],
  properties: {
    target: {
      type: 'object',
      required: ['type'],
      oneOf: [
        {
          additionalProperties: false,
          properties: {
            type: { const: 'local' },
            local: {
              type: 'object',
              additionalProperties: false,
              properties: {
                host: { type: 'string', default: '127.0.0.1' },
                stateDir: { type: 'string' },
              },
            },
          },
        },
        {
          additionalProperties: false,
          required: ['kubernetes'],
          properties: {
            type: { const: 'kubernetes' },
            kubernetes: {
              type: 'object',
              additionalProperties: false,
              required: ['clusters'],
              properties: {
                clusters: {
                  type: 'array',
                  minItems: 1,
                  items: {
                    type: 'object',
                    additionalProperties: false,
                    required: ['name', 'namespace'],
                    properties: {
                      name: { $ref: '#/$defs/name' },
                      kubeconfig: { type: 'string' },
                      context: { type: 'string' },
                      inCluster: { type: 'boolean' },
                      namespace: { $ref: '#/$defs/name' },
                      gateway: {
                        type: 'object',
                        additionalProperties: false,
                        required: ['name'],
                        properties: { name: { type: 'string' }, namespace: { type: 'string' } },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      ],
    },
    autoMerge: { type: 'boolean', default: false },
    approvals: {
      type: 'object',
      additionalProperties: false,
      properties: { required: { type: 'integer', minimum: 0, default: 0 } },
    },
    analysis: analysisSettingsSchema,
  },
});

export interface PrometheusSettings {
  url: string;
  timeout?: Duration;
  headers?: Record<string, string>;
  queries?: { requests?: string; errors?: string; latencyQuantile?: string };
}

export interface AnalysisSettings {
  provider?: 'builtin' | 'prometheus';
  interval?: Duration;
  failureLimit?: number;
  inconclusiveLimit?: number;
  minSamples?: number;
  warmup?: Duration;
  prometheus?: PrometheusSettings;
}

export interface KubernetesCluster {
  name: string;
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
  namespace: string;
  gateway?: { name: string; namespace?: string };
}

export type TargetSpec =
  | { type: 'local'; local?: { host?: string; stateDir?: string } }
  | { type: 'kubernetes'; kubernetes: { clusters: KubernetesCluster[] } };

export interface EnvironmentSpec {
  target: TargetSpec;
  autoMerge?: boolean;
  approvals?: { required?: number };
  analysis?: AnalysisSettings;
}

export type EnvironmentConfig = Document<'Environment', EnvironmentSpec>;
