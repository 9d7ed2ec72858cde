/**
 * `POST /api/v1/pipelines/trigger` and `GET /api/v1/pipelines/:id` over real HTTP, each job a real build of
 * examples/hello (stages, reproducible image into an OCI layout, signing, a proposal to an environments repo).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiServer, type Controller } from '../../../controller/index.js';
import { openPipelineQueue, type JobRecord, type PipelineQueue } from '../../../controller/pipelines/index.js';
import { generateKeyPair } from '../../../lib/keys/index.js';
import { createServiceRepo, type ServiceRepo } from '../../support/fixtures/service-repo.js';
import { makeEnvRepo, type TestRepo } from '../../support/promotion-repo.js';
import type { EnvRepo } from '../../support/envrepo.js';
import { TOKEN, call, quietController, slipwayBuild, untilDone } from './pipeline-support.js';

let tmp: string;
let home: string;
let service: ServiceRepo;
let envRepo: EnvRepo;
let controller: Controller;
let queue: PipelineQueue;
let api: ApiServer;
let url: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'slipway-api-pipelines-'));
  home = join(tmp, 'home');
  service = await createServiceRepo({ dir: join(tmp, 'hello') });
  // Where the trust policy of the environments repo says sources come from.
  await service.git('remote', 'add', 'origin', 'https://git.example/shop/hello');
  const made = await quietController(join(tmp, 'state'));
  controller = made.controller;
  envRepo = made.repo;
  queue = await openPipelineQueue({ stateDir: join(tmp, 'state'), home, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, SLIPWAY_HOME: home }, limits: { concurrency: 2 } });
  api = new ApiServer({ controller, token: TOKEN, pipelines: queue });
  url = await api.listen();
});

afterAll(async () => {
  await api?.close();
  await queue?.close();
  envRepo?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('a pipeline triggered through the API', () => {
  let first: JobRecord;

  it('answers 202 with the queued record and where to poll it', async () => {
    const res = await call(url, 'POST', '/api/v1/pipelines/trigger', { repo: service.dir, commit: service.commit, registry: `oci:${join(tmp, 'images-api')}`, actor: 'ci-bot' });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ kind: 'PipelineJob', state: expect.stringMatching(/^(queued|running)$/), request: { repo: service.dir, commit: service.commit, actor: 'ci-bot' } });
    expect(res.headers.get('location')).toBe(`/api/v1/pipelines/${res.body.id}`);
    ({ job: first } = await untilDone(url, res.body.id));
  });

  it('builds the same image, with the same stage results, as `slipway build` of that commit', async () => {
    const cli = await slipwayBuild([service.dir, '--commit', service.commit, '--registry', `oci:${join(tmp, 'images-cli')}`], { HOME: tmp, SLIPWAY_HOME: join(tmp, 'home-cli') });
    expect(cli.code).toBe(0);
    expect(first.state).toBe('succeeded');
    expect(first.result).toMatchObject({
      digest: cli.json.digest,
      imageRef: `oci:${join(tmp, 'images-api')}@${cli.json.digest}`,
      cacheHit: false,
      commit: service.commit,
      branch: 'main',
      signed: false,
      unsignedReason: expect.stringContaining('no signing key'),
    });
    const passed = { succeeded: 'passed', failed: 'failed', 'timed-out': 'failed', skipped: 'skipped', cancelled: 'skipped' } as Record<string, string>;
    expect(first.stages.map((s) => `${s.name}:${s.status}:${s.exitCode}`)).toEqual(
      (cli.json.stages as { name: string; status: string; exitCode: number | null }[]).map((s) => `${s.name}:${passed[s.status]}:${s.exitCode}`),
    );
    expect(first.stages.find((s) => s.name === 'test')).toMatchObject({ shards: 2 });
    for (const stage of first.stages) {
      expect(stage.durationMs).toEqual(expect.any(Number));
      expect(existsSync(stage.logPath!)).toBe(true);
    }
    expect(first).toMatchObject({ commit: service.commit, step: 'done', startedAt: expect.any(String), finishedAt: expect.any(String) });
  });

  it('lists it among the recent jobs, newest first', async () => {
    const res = await call(url, 'GET', '/api/v1/pipelines?limit=5');
    expect(res.status).toBe(200);
    expect(res.body.jobs[0]).toMatchObject({ id: first.id, state: 'succeeded' });
    expect(res.body.limits).toMatchObject({ concurrency: 2 });
    expect((await call(url, 'GET', '/api/v1/pipelines?state=failed')).body.jobs.map((j: JobRecord) => j.id)).not.toContain(first.id);
  });

  describe('when the commit was built before and a signing key exists', () => {
    let envs: TestRepo;
    afterAll(() => envs?.cleanup());

    it('reuses the cached build, signs it, and proposes the digest to the first environment', async () => {
      const key = generateKeyPair();
      mkdirSync(join(home, 'keys'), { recursive: true });
      writeFileSync(join(home, 'keys', 'slipway.key'), key.privateKeyPem, { mode: 0o600 });
      writeFileSync(join(home, 'keys', 'slipway.pub'), key.publicKeyPem);
      envs = makeEnvRepo({ bare: true, services: ['hello'], stagingAutoMerge: true, publicKeyPem: key.publicKeyPem });

      const res = await call(url, 'POST', '/api/v1/pipelines/trigger', { repo: service.dir, commit: service.commit, registry: `oci:${join(tmp, 'images-api')}`, sign: true, envs: envs.repo, actor: 'ci-bot' });
      expect(res.status).toBe(202);
      const { job } = await untilDone(url, res.body.id);
      expect(job).toMatchObject({ state: 'succeeded', result: { digest: first.result!.digest, cacheHit: true, signed: true, signature: { by: 'key slipway', attestationTag: expect.stringMatching(/^sha256-[a-f0-9]{64}\.att$/) } } });
      expect(job.stages.map((s) => `${s.name}:${s.status}`)).toEqual(['lint:passed', 'test:passed', 'build:passed']);
      // Signed by the key the environments repo trusts, so staging (auto-merge) takes it at once.
      expect(job.result!.proposal).toMatchObject({
        outcome: 'merged',
        environment: 'staging',
        verification: { ok: true, provenance: { sourceCommit: service.commit, sourceRepo: 'https://git.example/shop/hello' } },
        proposal: { author: 'ci-bot', digest: job.result!.digest },
        summary: expect.stringContaining('merged into staging'),
      });
      expect(envs.git(['show', 'main:staging/services/hello.yaml'], envs.repo)).toContain(job.result!.digest);
    });
  });
});

describe('a pipeline whose test stage fails', () => {
  it('is reported failed with the stage named, its exit code and the tail of its log; later stages skipped', async () => {
    const failing = await service.commitFiles({ 'scripts/test.js': "console.log('checking the greeting');\nconsole.error('expected \"hello\", got \"bye\"');\nprocess.exit(3);\n" }, 'break the test');
    // The build fails before any proposal, so this remote is never contacted; its token must never be shown.
    const envs = 'https://bot:s3cret-token@git.invalid/shop/envs.git';
    const res = await call(url, 'POST', '/api/v1/pipelines/trigger', { repo: service.dir, commit: failing, registry: join(tmp, 'images-api'), envs });
    expect(res.status).toBe(202);
    expect(JSON.stringify(res.body)).not.toContain('s3cret-token');
    expect(res.body.request.envs).toBe('https://***@git.invalid/shop/envs.git');
    const { job } = await untilDone(url, res.body.id);
    expect(job).toMatchObject({
      state: 'failed',
      commit: failing,
      error: { code: 'STAGE_FAILED', stage: 'test', message: expect.stringContaining('exit code 3'), logPath: expect.stringContaining('test') },
      stages: [
        { name: 'lint', status: 'passed', exitCode: 0 },
        { name: 'test', status: 'failed', exitCode: 3 },
        { name: 'build', status: 'skipped', exitCode: null },
      ],
    });
    expect(job.error!.logTail!.join('\n')).toContain('expected "hello", got "bye"');
    expect(job.result).toBeUndefined();
    expect(JSON.stringify(job)).not.toContain('s3cret-token');
    expect(JSON.stringify((await call(url, 'GET', '/api/v1/pipelines')).body)).not.toContain('s3cret-token');

    const log = await call(url, 'GET', `/api/v1/pipelines/${job.id}/stages/test/log`);
    expect(log.status).toBe(200);
    expect(log.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(log.body).toContain('expected "hello", got "bye"');
    const skipped = await call(url, 'GET', `/api/v1/pipelines/${job.id}/stages/build/log`);
    expect(skipped.status).toBe(404);
    expect(skipped.body.error.message).toContain('stage "build" of');
    expect(skipped.body.error.message).toContain('has no log (it is skipped');
    const unknown = await call(url, 'GET', `/api/v1/pipelines/${job.id}/stages/deploy/log`);
    expect(unknown.body.error).toMatchObject({ field: 'stage', message: expect.stringContaining('its stages: lint, test, build') });
  });
});

describe('the pipeline routes refuse', () => {
  it.each([
    ['POST', '/api/v1/pipelines/trigger'],
    ['GET', '/api/v1/pipelines'],
    ['GET', '/api/v1/pipelines/20260101-000000-abcdef'],
  ])('%s %s without the bearer token (401)', async (method, path) => {
    expect((await call(url, method, path, method === 'POST' ? { repo: '/x' } : undefined, {})).status).toBe(401);
    expect((await call(url, method, path, method === 'POST' ? { repo: '/x' } : undefined, { authorization: 'Bearer wrong' })).status).toBe(401);
  });

  it.each([
    ['bad JSON', '{"repo": ', 'BAD_JSON', ''],
    ['a body that is not an object', '[1, 2]', 'BAD_FIELD', ''],
    ['an empty body', '', 'MISSING_FIELD', 'repo'],
    ['an unknown field', { repo: '/x', comit: 'HEAD' }, 'UNKNOWN_FIELD', 'comit'],
    ['a field of the wrong type', { repo: '/x', sign: 'yes' }, 'BAD_FIELD', 'sign'],
    ['a relative repo path', { repo: 'hello' }, 'BAD_FIELD', 'repo'],
    ['an http repo URL', { repo: 'https://git.example/shop/hello' }, 'BAD_FIELD', 'repo'],
    ['a commit that looks like an option', { repo: '/x', commit: '--all' }, 'BAD_FIELD', 'commit'],
    ['a malformed registry', { repo: '/x', registry: 'http://registry/x' }, 'BAD_FIELD', 'registry'],
  ])('%s (400 naming the field)', async (_name, body, code, field) => {
    const res = await call(url, 'POST', '/api/v1/pipelines/trigger', body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code, field });
    expect(res.body.error.message).not.toMatch(/\n\s+at /);
  });

  it('a repo that is not a git repository, and a commit it does not have (400, nothing queued)', async () => {
    const before = (await call(url, 'GET', '/api/v1/pipelines?limit=1000')).body.jobs.length;
    const notRepo = await call(url, 'POST', '/api/v1/pipelines/trigger', { repo: tmp });
    expect(notRepo.status).toBe(400);
    expect(notRepo.body.error).toMatchObject({ field: 'repo', message: expect.stringContaining('not a git repository') });
    const noCommit = await call(url, 'POST', '/api/v1/pipelines/trigger', { repo: service.dir, commit: 'f'.repeat(40) });
    expect(noCommit.status).toBe(400);
    expect(noCommit.body.error).toMatchObject({ field: 'commit' });
    expect((await call(url, 'GET', '/api/v1/pipelines?limit=1000')).body.jobs.length).toBe(before);
  });

  it('an unknown job id (404), and a bad list query (400)', async () => {
    const res = await call(url, 'GET', '/api/v1/pipelines/20260101-000000-abcdef');
    expect(res.status).toBe(404);
    expect(res.body.error.message).toContain('no pipeline job "20260101-000000-abcdef"');
    expect((await call(url, 'GET', '/api/v1/pipelines/..%2F..%2Fetc%2Fpasswd')).status).toBe(404);
    expect((await call(url, 'GET', '/api/v1/pipelines?limit=0')).body.error).toMatchObject({ field: 'limit' });
    expect((await call(url, 'GET', '/api/v1/pipelines?state=done')).body.error).toMatchObject({ field: 'state' });
  });
});


