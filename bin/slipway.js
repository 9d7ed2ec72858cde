#!/usr/bin/env node
// Runs the compiled CLI when it is there (fast start), otherwise the TypeScript sources through tsx.
// `slipway build` first tries the cache-hit answer (cli/commands/build-cached), which loads a small part
// of the builder and none of the CLI; on anything but a complete hit the full CLI runs the command.
// SLIPWAY_BUILD_FAST_PATH=0 skips that try (to compare both paths).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = existsSync(join(root, 'dist', 'cli', 'main.js')) && process.env.SLIPWAY_FROM_SOURCE !== '1';
if (!compiled) {
  const { register } = await import('tsx/esm/api');
  register();
}
const load = (module) => import(pathToFileURL(join(root, ...(compiled ? ['dist', `${module}.js`] : [`${module}.ts`]))).href);

let answered = false;
if (process.argv[2] === 'build' && process.env.SLIPWAY_BUILD_FAST_PATH !== '0') {
  // A dist/ compiled before this entry existed has no build-cached.js: then the full CLI answers.
  const fast = await load('cli/commands/build-cached').catch(() => undefined);
  if (fast) answered = await fast.tryCachedBuild(process.argv.slice(3));
}
if (!answered) {
  // A build is a one-shot process: V8 should not spend the cores on compiling what runs for a moment (builder/image/tiering).
  if (process.argv[2] === 'build') (await load('builder/image/tiering')).tuneTieringForOneShotBuild();
  await load('cli/main');
}
