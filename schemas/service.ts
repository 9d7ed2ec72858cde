import { envelope, type Digest, type Document, type Duration } from './common.js';
import { analysisSettingsSchema, type AnalysisSettings } from './environment.js';

const analysisStepSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    interval: { $ref: '#/$defs/duration' },
    count: { description: 'How many intervals to judge before the step passes.', type: 'integer', minimum: 1 },
    warmup: {
      description: "Traffic in the step's first warmup is not judged (a cold canary process is slower for its first requests); overrides the environment's analysis.warmup.",
      $ref: '#/$defs/duration',
    },
  },
} as const;

export const serviceSchema = envelope('Service', {
  type: 'object',
  additionalProperties: false,
  required: ['image', 'port'],
  properties: {
    image: {
      type: 'object',
      additionalProperties: false,
      required: ['repository', 'digest'],
      properties: {
        repository: {
          description: 'Where the image lives: `host:port/name` (OCI distribution registry) or `oci:<path>` (OCI image layout directory).',
          type: 'string',
          minLength: 1,
        },
        digest: { $ref: '#/$defs/digest' },
      },
    },
    replicas: { type: 'integer', minimum: 0, maximum: 1000, default: 1 },
    port: { description: 'Port the application listens on (the local target sets PORT per instance).', type: 'integer', minimum: 1, maximum: 65535 },
    proxyPort: { description: 'Local target: fixed port of the weighted proxy for this service.', type: 'integer', minimum: 1, maximum: 65535 },
    healthPath: { type: 'string', pattern: '^/', default: '/healthz' },
    env: { $ref: '#/$defs/stringMap' },
    strategy: {
      type: 'object',
      minProperties: 1,
      maxProperties: 1,
      additionalProperties: false,
      properties: {
        rolling: { type: 'object', additionalProperties: false, properties: {} },
        blueGreen: {
          type: 'object',
          additionalProperties: false,
          properties: {
            autoPromote: { type: 'boolean', default: true },
            previewAnalysis: analysisStepSchema,
            postSwitchAnalysis: analysisStepSchema,
            scaleDownDelay: { $ref: '#/$defs/duration' },
          },
        },
        canary: {
          type: 'object',
          additionalProperties: false,
          required: ['steps'],
          properties: {
            steps: {
              type: 'array',
              minItems: 1,
              items: {
                type: 'object',
                minProperties: 1,
                maxProperties: 1,
                additionalProperties: false,
                properties: {
                  setWeight: { type: 'integer', minimum: 0, maximum: 100 },
                  pause: {
                    type: 'object',
                    additionalProperties: false,
                    properties: { duration: { $ref: '#/$defs/duration' } },
                  },
                  analysis: analysisStepSchema,
                },
              },
            },
          },
        },
      },
    },
    slos: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxErrorRate: { type: 'number', minimum: 0, maximum: 1 },
        latency: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['quantile', 'maxMs'],
            properties: {
              quantile: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
              maxMs: { type: 'number', exclusiveMinimum: 0 },
            },
          },
        },
        compareToBaseline: { type: 'boolean', default: true },
        minRequests: { type: 'integer', minimum: 1 },
      },
    },
    analysis: analysisSettingsSchema,
  },
});

export interface AnalysisStep {
  interval?: Duration;
  count?: number;
  warmup?: Duration;
}

export type CanaryStep =
  | { setWeight: number }
  | { pause: { duration?: Duration } }
  | { analysis: AnalysisStep };

export interface BlueGreenStrategy {
  autoPromote?: boolean;
  previewAnalysis?: AnalysisStep;
  postSwitchAnalysis?: AnalysisStep;
  scaleDownDelay?: Duration;
}

export type Strategy =
  | { rolling: Record<string, never> }
  | { blueGreen: BlueGreenStrategy }
  | { canary: { steps: CanaryStep[] } };

export interface Slos {
  maxErrorRate?: number;
  latency?: { quantile: number; maxMs: number }[];
  compareToBaseline?: boolean;
  minRequests?: number;
}

export interface ServiceSpec {
  image: { repository: string; digest: Digest };
  replicas?: number;
  port: number;
  proxyPort?: number;
  healthPath?: string;
  env?: Record<string, string>;
  strategy?: Strategy;
  slos?: Slos;
  analysis?: AnalysisSettings;
}

export type ServiceConfig = Document<'Service', ServiceSpec>;

export function strategyType(strategy: Strategy | undefined): 'rolling' | 'blueGreen' | 'canary' {
  if (!strategy || 'rolling' in strategy) return 'rolling';
  if ('blueGreen' in strategy) return 'blueGreen';
  return 'canary';
}
