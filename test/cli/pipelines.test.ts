/** `slipway pipelines trigger|status|list` against a real controller API running real builds of examples/hello. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ApiServer } from '../../controller/index.js';
import { openPipelineQueue, type JobRecord, type PipelineQueue } from '../../controller/pipelines/index.js';
import { createServiceRepo, type ServiceRepo } from '../support/fixtures/service-repo.js';
import type { EnvRepo } from '../support/envrepo.js';
import { TOKEN, quietController } from '../controller/api/pipeline-support.js';

const execFileAsync = promisify(execFile);

const LIGHT_PIPELINE = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata:
  name: hello
spec:
  stages:
    - name: lint
      command: 'if [ -f LINT_ERROR ]; then cat LINT_ERROR >&2; exit 2; fi; echo lint ok'
    - name: test
      command: echo test shard $SLIPWAY_SHARD_INDEX ok
      parallelism: 2
    - name: build
      command: mkdir -p dist && cp server.js package.json dist/
  image:
    context: dist
    entrypoint: [node, server.js]
`;
const BIN = resolve('bin/slipway.js');

let tmp: string;
let service: ServiceRepo;
let envRepo: EnvRepo;
let queue: PipelineQueue;
let api: ApiServer;
let url: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'slipway-cli-pipelines-'));
  // examples/hello with its stages as shell one-liners: the same shape (a sharded test stage, a build that makes
  // the image context) at a fraction of the processes, since this file tests the CLI, not the builder.
  service = await createServiceRepo({ dir: join(tmp, 'hello'), pipeline: LIGHT_PIPELINE });
  const made = await quietController(join(tmp, 'state'));
  envRepo = made.repo;
  const home = join(tmp, 'controller-home');
  queue = await openPipelineQueue({ stateDir: join(tmp, 'state'), home, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, SLIPWAY_HOME: home }, limits: { concurrency: 1 } });
  api = new ApiServer({ controller: made.controller, token: TOKEN, pipelines: queue });
  url = await api.listen();
});

afterAll(async () => {
  await api?.close();
  await queue?.close();
  envRepo?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function slipway(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [BIN, 'pipelines', ...args, '--url', url], {
      cwd: tmp,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, SLIPWAY_HOME: join(tmp, 'user-home'), SLIPWAY_FROM_SOURCE: '1', SLIPWAY_CONTROLLER_TOKEN: TOKEN },
      timeout: 55_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string; killed?: boolean; signal?: string };
    // A CLI that outlived its timeout is killed: say so, rather than leave a bare `code: null` to puzzle over.
    const killed = e.killed ? `\n[slipway pipelines ${args.join(' ')} was killed with ${e.signal} after 55 s]` : '';
    return { code: e.code, stdout: e.stdout, stderr: `${e.stderr}${killed}` };
  }
}

describe('slipway pipelines', () => {
  let id: string;
  let built: string;

  describe('trigger --wait', () => {
    it('queues the build on the controller, follows its stages and prints the image', async () => {
      built = service.commit;
      const out = await slipway('trigger', 'hello', '--commit', service.commit, '--registry', 'images', '--wait', '--timeout', '50s');
      expect(out.stderr).toMatch(/^queued: \S+$/m);
      expect(out.code).toBe(0);
      id = /^pipeline (\S+): succeeded commit ([a-f0-9]{12}) \(main\)$/m.exec(out.stdout)![1]!;
      expect(out.stdout).toContain(`commit ${built.slice(0, 12)}`);
      expect(out.stdout).toMatch(/^ {2}lint +passed .*exit 0$/m);
      expect(out.stdout).toMatch(/^ {2}test +passed .*exit 0 +2 shards$/m);
      // A relative --registry means the caller's directory, made absolute before it reaches the controller.
      expect(out.stdout).toContain(`image: oci:${join(tmp, 'images')}@sha256:`);
      expect(out.stdout).toMatch(/^unsigned: no signing key/m);
      expect(out.stderr).toMatch(/^build +passed/m);
    });

    it('exits 1 with the failing stage and its log when a stage fails', async () => {
      const broken = await service.commitFiles({ LINT_ERROR: 'lint: missing semicolon at server.js:3\n' }, 'break lint');
      const out = await slipway('trigger', service.dir, '--commit', broken, '--wait', '--timeout', '50s');
      expect(out.code).toBe(1);
      expect(out.stdout).toMatch(/^pipeline \S+: failed/m);
      expect(out.stdout).toMatch(/^ {2}lint +failed .*exit 2$/m);
      expect(out.stdout).toMatch(/^ {2}build +skipped/m);
      expect(out.stdout).toMatch(/^error: STAGE_FAILED: stage "lint" failed with exit code 2/m);
      expect(out.stdout).toContain('missing semicolon');

      const failedId = /^pipeline (\S+): failed/m.exec(out.stdout)![1]!;
      const logs = await slipway('logs', failedId, 'lint');
      expect(logs.code).toBe(0);
      expect(logs.stdout).toBe('lint: missing semicolon at server.js:3\n');
    });
  });

  describe('status and list', () => {
    type Answer = Awaited<ReturnType<typeof slipway>>;
    let answers: { status: Promise<Answer>; list: Promise<Answer>; missing: Promise<Answer>; cancel: Promise<Answer> };
    beforeAll(() => {
      // Four reads of jobs that have ended (the refused cancel changes nothing): started together, one round of
      // CLI start-ups instead of four in a row.
      answers = {
        status: slipway('status', id, '--json'),
        list: slipway('list'),
        missing: slipway('status', '20260101-000000-abcdef'),
        cancel: slipway('cancel', id),
      };
    });

    it('show the job record and the recent jobs', async () => {
      const status = await answers.status;
      expect(status.code).toBe(0);
      expect(JSON.parse(status.stdout) as JobRecord).toMatchObject({ id, state: 'succeeded', commit: built, result: { cacheHit: false } });
      const list = await answers.list;
      expect(list.code).toBe(0);
      expect(list.stdout.split('\n')[0]).toMatch(/^ID +STATE +COMMIT +REPO +IMAGE\/ERROR$/);
      expect(list.stdout).toMatch(new RegExp(`^${id} +succeeded `, 'm'));
      expect(list.stdout).toMatch(/ failed .*STAGE_FAILED$/m);
    });

    it('say plainly when a job does not exist (exit 2)', async () => {
      const out = await answers.missing;
      expect(out.code).toBe(2);
      expect(out.stderr).toContain('the controller answered 404: no pipeline job "20260101-000000-abcdef"');
    });

    it('refuse to cancel a job that has ended (exit 2)', async () => {
      const out = await answers.cancel;
      expect(out.code).toBe(2);
      expect(out.stderr).toContain(`the controller answered 409: pipeline job ${id} already succeeded`);
    });
  });
});
