/** The contract: JSON Schemas (2020-12) of every file a user writes, and their TypeScript types. */
export * from './common.js';
export * from './slipway.js';
export * from './environment.js';
export * from './freeze.js';
export * from './service.js';
export * from './pipeline.js';
export * from './quarantine.js';
