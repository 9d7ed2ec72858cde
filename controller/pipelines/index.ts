/**
 * Builder jobs run by the controller: `POST /api/v1/pipelines/trigger` queues one, a bounded number run at
 * once, each record (state, stage statuses, result) is kept on disk under the controller's state dir.
 */
import { join } from 'node:path';
import { homePath } from '../../lib/home.js';
import { createBuilderRunner, type BuilderRunnerOptions } from './builder-runner.js';
import { PipelineQueue } from './queue.js';
import { FileJobStore } from './store.js';
import type { QueueLimits } from './types.js';

export * from './types.js';
export { admit, applyEvent, cancelJob, finishJob, interruptJob, newJob, recover, toStart, toForget, recent, byQueueOrder, redacted, type Admission } from './core.js';
export { PipelineQueue, defaultLimits, newJobId, type PipelineQueueOptions } from './queue.js';
export { FileJobStore } from './store.js';
export { PipelineMetrics } from './metrics.js';
export { checkPipelineRequest, PIPELINE_REQUEST_SCHEMA, type RequestCheck } from './request.js';
export { createBuilderRunner, stageRecord, storeOf, type BuilderRunnerOptions } from './builder-runner.js';

export interface OpenPipelinesOptions extends BuilderRunnerOptions {
  /** The controller's state dir; records go to `<stateDir>/pipelines` (default $SLIPWAY_HOME/controller). */
  stateDir?: string;
  limits?: Partial<QueueLimits>;
  log?: (line: string) => void;
}

/** The queue `slipway controller` serves: file records under the state dir, the real builder as runner. */
export function openPipelineQueue(options: OpenPipelinesOptions = {}): Promise<PipelineQueue> {
  const dir = join(options.stateDir ?? homePath('controller'), 'pipelines');
  return PipelineQueue.open({
    store: new FileJobStore(dir, options.log),
    runner: createBuilderRunner({ ...(options.home ? { home: options.home } : {}), ...(options.env ? { env: options.env } : {}) }),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
}
