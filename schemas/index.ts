/** The contract: JSON Schemas (2020-12) of every file a user writes, their TypeScript types, and the validator. */
export * from './common.js';
export * from './slipway.js';
export * from './environment.js';
export * from './freeze.js';
export * from './service.js';
export * from './pipeline.js';
export * from './quarantine.js';
export * from './problem.js';
export * from './validate.js';
