import { envelope, type Document, type Duration } from './common.js';

export const freezeSchema = envelope(
  'FreezeWindows',
  {
    type: 'object',
    additionalProperties: false,
    required: ['windows'],
    properties: {
      windows: {
        type: 'array',
        items: {
          type: 'object',
          oneOf: [
            {
              additionalProperties: false,
              required: ['name', 'start', 'end', 'timeZone'],
              properties: {
                name: { type: 'string', minLength: 1 },
                reason: { type: 'string' },
                start: { description: 'Local date-time in timeZone, e.g. 2026-12-20T00:00', type: 'string', minLength: 1 },
                end: { type: 'string', minLength: 1 },
                timeZone: { $ref: '#/$defs/timeZone' },
              },
            },
            {
              additionalProperties: false,
              required: ['name', 'cron', 'duration', 'timeZone'],
              properties: {
                name: { type: 'string', minLength: 1 },
                reason: { type: 'string' },
                cron: { description: 'Five-field cron expression: when each window opens.', type: 'string', minLength: 1 },
                duration: { $ref: '#/$defs/duration' },
                timeZone: { $ref: '#/$defs/timeZone' },
              },
            },
          ],
        },
      },
    },
  },
  { metadataRequired: false },
);

export interface FixedFreezeWindow {
  name: string;
  reason?: string;
  start: string;
  end: string;
  timeZone: string;
}

export interface RecurringFreezeWindow {
  name: string;
  reason?: string;
  cron: string;
  duration: Duration;
  timeZone: string;
}

export type FreezeWindow = FixedFreezeWindow | RecurringFreezeWindow;

export interface FreezeSpec {
  windows: FreezeWindow[];
}

export type FreezeConfig = Omit<Document<'FreezeWindows', FreezeSpec>, 'metadata'> & { metadata?: Document<'x', unknown>['metadata'] };
