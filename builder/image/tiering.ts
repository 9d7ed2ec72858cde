/**
 * V8 tiering for a process that builds one image and exits (`slipway build`). V8 hands a function to
 * its optimizing compiler (TurboFan) once it has spent an "interrupt budget" of bytecode, tuned for
 * pages and servers that run for minutes. A build runs its layer code for a few hundred milliseconds
 * on two threads, and the compile jobs of everything that gets warm on the way (the walk, the tar
 * layout, Node's fs and Buffer helpers: ~70 of them, ~300 ms of compile-thread CPU) ran on the same
 * two cores as the layer and the registry. Measured on the builder bench (5,000 files, 2 cores, new
 * process): a budget of 1,000,000 (V8's default is 67,584) cut the build's CPU by ~20% and its wall
 * time by ~20%; 3,000,000 and more was slower again (the hot loops wait longer for optimized code).
 *
 * The code that is hot in every large layer is warmed up ahead (prepareBlockWorkers, while the stages
 * run) under V8's default budget (`withDefaultTiering`), where a few rounds get it optimized: under the
 * raised budget the same took ~110 ms of CPU, which a small build (the sample service) paid in wall time.
 *
 * Process-wide, so only for one-shot processes: never the controller, whose code runs for hours and
 * is best optimized early.
 */
import { setFlagsFromString } from 'node:v8';

const ONE_SHOT_INTERRUPT_BUDGET = 1_000_000;
/** V8's own default (Node 20, V8 11.3). */
const DEFAULT_INTERRUPT_BUDGET = 67_584;

let raised = false;

/** Raises V8's interrupt budget for this process (and its worker threads): call first thing. */
export function tuneTieringForOneShotBuild(): void {
  if (raised) return;
  raised = true;
  setFlagsFromString(`--interrupt-budget=${ONE_SHOT_INTERRUPT_BUDGET}`);
}

/** Runs `warmUp` under V8's default budget (a no-op change where it was never raised), then raises it again. */
export async function withDefaultTiering(warmUp: () => Promise<void>): Promise<void> {
  if (!raised) return warmUp();
  setFlagsFromString(`--interrupt-budget=${DEFAULT_INTERRUPT_BUDGET}`);
  try {
    await warmUp();
  } finally {
    setFlagsFromString(`--interrupt-budget=${ONE_SHOT_INTERRUPT_BUDGET}`);
  }
}
