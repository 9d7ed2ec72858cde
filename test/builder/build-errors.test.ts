import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, type BuildEvent, type BuildOptions } from '../../builder/index.js';
import { openImageStore } from '../../lib/oci/index.js';
import { createServiceRepo, type ServiceRepo } from '../support/fixtures/service-repo.js';
import { freePort, skopeo, startRegistry, type TestRegistry } from '../support/registry.js';

const fast = { retry: { attempts: 2, baseDelayMs: 5 } };

let registry: TestRegistry;
let secured: TestRegistry;
let tmp: string;
let repo: ServiceRepo;

beforeAll(async () => {
  [registry, secured] = await Promise.all([startRegistry(), startRegistry({ users: { ci: 'pw' } })]);
  tmp = await mkdtemp(join(tmpdir(), 'slipway-build-test-'));
  repo = await createServiceRepo({ dir: join(tmp, 'hello'), version: '1.0.0' });
});
afterAll(async () => {
  await registry?.stop();
  await secured?.stop();
  await rm(tmp, { recursive: true, force: true });
});

function options(extra: Partial<BuildOptions> & { home: string }): BuildOptions & { events: BuildEvent[] } {
  const events: BuildEvent[] = [];
  return {
    repoDir: repo.dir,
    store: `${registry.host}/hello`,
    storeOptions: fast,
    env: { PATH: process.env.PATH, HOME: tmp },
    onEvent: (e) => events.push(e),
    ...extra,
    events,
  };
}
const started = (events: BuildEvent[]) => events.filter((e) => e.type === 'stage-started').map((e) => (e as { stage: string }).stage);

describe('build() refusing and failing', () => {
  const home = () => join(tmp, 'home-errors');

  describe('bad input', () => {
    it('refuses a commit that does not exist', async () => {
      await expect(build(options({ home: home(), commit: 'f'.repeat(40) }))).rejects.toMatchObject({ code: 'COMMIT_NOT_FOUND', message: expect.stringContaining('does not exist') });
    });

    it('refuses a directory that is not a git repository', async () => {
      await expect(build(options({ home: home(), repoDir: tmp }))).rejects.toMatchObject({ code: 'NOT_A_REPOSITORY' });
    });

    it('says the pipeline file is missing', async () => {
      const noPipeline = await createServiceRepo({ dir: join(tmp, 'nopipe') });
      await noPipeline.git('rm', '-q', '.slipway/pipeline.yaml');
      await noPipeline.commitFiles({}, 'drop pipeline');
      await expect(build(options({ home: home(), repoDir: noPipeline.dir }))).rejects.toMatchObject({ code: 'PIPELINE_MISSING' });
    });

    it('names line and column of an invalid pipeline', async () => {
      const bad = await createServiceRepo({ dir: join(tmp, 'badpipe'), pipeline: 'apiVersion: slipway.dev/v1\nkind: Pipeline\nmetadata:\n  name: x\nspec:\n  stages: []\n  image:\n    context: dist\n' });
      await expect(build(options({ home: home(), repoDir: bad.dir }))).rejects.toMatchObject({
        code: 'PIPELINE_INVALID',
        message: expect.stringContaining('.slipway/pipeline.yaml:6:11 spec.stages: must list at least one entry'),
      });
    });

    it('fails on a failing stage with its last log lines and pushes nothing', async () => {
      const failing = await createServiceRepo({ dir: join(tmp, 'failing') });
      await failing.commitFiles(
        { 'scripts/test.js': 'if (process.env.SLIPWAY_SHARD_INDEX === "1") { process.stdout.write("expected 2 got 3\\n"); process.exit(1); }\n' },
        'break the tests in shard 2',
      );
      const store = `${registry.host}/failing`;
      const error = await build(options({ home: home(), repoDir: failing.dir, store, tag: 'latest' })).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'STAGE_FAILED', data: { stage: 'test' } });
      expect((error as Error).message).toContain('stage "test" (shard 2 of 2) failed with exit code 1');
      expect((error as Error).message).toContain('| expected 2 got 3');
      expect(await openImageStore(store, fast).listTags()).toEqual([]);
    });
  });

  describe('when the registry is down', () => {
    it('fails clearly, and the next build pushes the cached image without rerunning stages', async () => {
      const h = join(tmp, 'home-down');
      const port = await freePort();
      await expect(build(options({ home: h, store: `127.0.0.1:${port}/hello` }))).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE', kind: 'waiting' });
      const opts = options({ home: h });
      const result = await build(opts);
      expect(result.cached).toBe(true);
      expect(started(opts.events)).toEqual([]);
    });
  });

  describe('when the registry needs credentials', () => {
    it('refuses without them and pushes with them', async () => {
      const h = join(tmp, 'home-auth');
      await expect(build(options({ home: h, store: `${secured.host}/hello`, storeOptions: { ...fast, env: {} } }))).rejects.toMatchObject({ code: 'REGISTRY_AUTH' });
      const result = await build(options({ home: h, store: `${secured.host}/hello`, storeOptions: { ...fast, credentials: { username: 'ci', password: 'pw' } } }));
      expect(result.cached).toBe(true);
      expect(
        JSON.parse(await skopeo(['inspect', '--no-tags', '--tls-verify=false', '--creds', 'ci:pw', `docker://${secured.host}/hello@${result.digest}`])).Digest,
      ).toBe(result.digest);
    });
  });

  describe('the afterPush hook', () => {
    it('sees the pushed image and its failure fails the build', async () => {
      const seen: string[] = [];
      const result = await build(
        options({
          home: home(),
          afterPush: async (r, { store }) => {
            seen.push(r.digest, (await store.getManifest(r.digest))!.digest);
          },
        }),
      );
      expect(seen).toEqual([result.digest, result.digest]);
      await expect(
        build(
          options({
            home: home(),
            afterPush: async () => {
              throw new Error('signing failed');
            },
          }),
        ),
      ).rejects.toThrow('signing failed');
    });
  });
});
