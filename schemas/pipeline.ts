import { envelope, type Document, type Duration } from './common.js';

/** `.slipway/pipeline.yaml` in a service repository. */
export const pipelineSchema = envelope('Pipeline', {
  type: 'object',
  additionalProperties: false,
  required: ['stages', 'image'],
  properties: {
    stages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'command'],
        properties: {
          name: { $ref: '#/$defs/name' },
          command: {
            description: 'Shell command (run with sh -c), or argv array.',
            oneOf: [
              { type: 'string', minLength: 1 },
              { type: 'array', minItems: 1, items: { type: 'string' } },
            ],
          },
          timeout: { $ref: '#/$defs/duration' },
          parallelism: { type: 'integer', minimum: 1, maximum: 64, default: 1 },
          condition: {
            description: 'e.g. `branch == main`, `branch != main`, `branch =~ ^release/`; combine with && and ||.',
            type: 'string',
            minLength: 1,
          },
          env: { $ref: '#/$defs/stringMap' },
        },
      },
    },
    image: {
      type: 'object',
      additionalProperties: false,
      required: ['context'],
      properties: {
        context: { description: 'Directory (relative to the checkout) whose contents become the image layer after the stages ran.', type: 'string', minLength: 1 },
        entrypoint: { type: 'array', items: { type: 'string' } },
        cmd: { type: 'array', items: { type: 'string' } },
        env: { $ref: '#/$defs/stringMap' },
        workingDir: { type: 'string' },
        exposedPort: { type: 'integer', minimum: 1, maximum: 65535 },
        labels: { $ref: '#/$defs/stringMap' },
      },
    },
  },
});

export interface PipelineStage {
  name: string;
  command: string | string[];
  timeout?: Duration;
  parallelism?: number;
  condition?: string;
  env?: Record<string, string>;
}

export interface ImageConfigSpec {
  context: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: Record<string, string>;
  workingDir?: string;
  exposedPort?: number;
  labels?: Record<string, string>;
}

export interface PipelineSpec {
  stages: PipelineStage[];
  image: ImageConfigSpec;
}

export type PipelineConfig = Document<'Pipeline', PipelineSpec>;
