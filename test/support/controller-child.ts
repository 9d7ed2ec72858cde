/**
 * A controller process for tests that kill it: `node --import tsx test/support/controller-child.ts`. It follows a
 * real git repo, keeps its state on disk, drives a file-backed target (whose "instances" outlive the process, as
 * real ones do) and serves the API.
 *
 * Its configuration is JSON in SLIPWAY_TEST_CHILD, or else one JSON line on stdin. With stdin, a test can start
 * the process ahead of need (loading the controller's modules through tsx takes seconds on a loaded machine) and
 * hand it its configuration when it should start: nothing is read from the repo, the state or the target before
 * the line arrives. Stdin closed without a line: the test did not need it, it exits.
 */
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { Controller, ApiServer, GitEnvironmentSource, freezeCalendar } from '../../controller/index.js';
import { MemoryTarget, type TargetCall } from './memory-target.js';
import { GitCliRevert } from './git-revert.js';

interface ChildConfig {
  repo: string;
  stateDir: string;
  targetFile: string;
  token: string;
  hang?: { when: 'before' | 'after'; op: TargetCall['op']; weight?: number; track?: string };
}

async function readConfig(): Promise<ChildConfig | undefined> {
  if (process.env.SLIPWAY_TEST_CHILD) return JSON.parse(process.env.SLIPWAY_TEST_CHILD) as ChildConfig;
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    const end = text.indexOf('\n');
    if (end >= 0) return JSON.parse(text.slice(0, end)) as ChildConfig;
  }
  return undefined;
}

const config = await readConfig();
if (!config) process.exit(0);
const matches = (call: TargetCall): boolean =>
  !!config.hang &&
  call.op === config.hang.op &&
  (config.hang.weight === undefined || (call.op === 'setWeight' && call.weight === config.hang.weight)) &&
  (config.hang.track === undefined || ((call.op === 'ensureTrack' || call.op === 'removeTrack') && call.track === config.hang.track));
const target = new MemoryTarget({
  file: config.targetFile,
  ...(config.hang?.when === 'before' ? { hangBefore: matches } : {}),
  ...(config.hang?.when === 'after' ? { hangAfter: matches } : {}),
});

const controller = new Controller({
  source: new GitEnvironmentSource({ location: config.repo }),
  targetFor: () => target,
  verifier: {
    verify: async (r) => ({
      ok: true,
      provenance: { digest: r.digest, builderId: 'test', sourceRepo: 'test', sourceRef: 'refs/heads/main', sourceCommit: 'test', keyName: 'ci' },
    }),
  },
  freeze: freezeCalendar({ activeWindows: () => [] }),
  analysis: { analyze: async (ctx) => ({ outcome: 'pass', summary: 'healthy (test provider)', slos: [], at: ctx.end.toISOString() }) },
  rollback: new GitCliRevert(config.repo),
  stateDir: config.stateDir,
  log: (line) => process.stderr.write(`${line}\n`),
});

const api = new ApiServer({ controller, token: config.token });
const url = await api.listen();
// The address is published once the controller has loaded its records and synced: a test that saw a
// rollout paused on disk (left by a killed predecessor) must not reach an API that knows no service yet.
await controller.start();
writeFileSync(join(config.stateDir, 'api-url.tmp'), url);
renameSync(join(config.stateDir, 'api-url.tmp'), join(config.stateDir, 'api-url'));
process.on('SIGTERM', () => {
  void controller
    .stop()
    .then(() => api.close())
    .then(() => process.exit(0));
});
