import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build, type BuildEvent, type BuildOptions } from '../../builder/index.js';
import { buildCacheRoot, layerHintPath, readLayerHint } from '../../builder/cache/index.js';
import { computeDigest, openImageStore, pullImage, unpackLayers } from '../../lib/oci/index.js';
import { createServiceRepo, type ServiceRepo } from '../support/fixtures/service-repo.js';
import { skopeo, startRegistry, type TestRegistry } from '../support/registry.js';

const execFileAsync = promisify(execFile);
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

describe('build()', () => {
  const home = () => join(tmp, 'home-main');

  describe('when a commit is built for the first time', () => {
    it('runs the stages and pushes an image skopeo reads back with the same digest and labels', async () => {
      const opts = options({ home: home() });
      const result = await build(opts);
      expect(result.cached).toBe(false);
      expect(result.imageRef).toBe(`${registry.host}/hello@${result.digest}`);
      expect(result.stages.map((s) => [s.name, s.status])).toEqual([
        ['lint', 'succeeded'],
        ['test', 'succeeded'],
        ['build', 'succeeded'],
      ]);
      expect(result.stages[1]!.shards).toHaveLength(2);
      expect(started(opts.events)).toEqual(['lint', 'test', 'build']);
      expect(result.source).toMatchObject({ commit: repo.commit, branch: 'main', url: `file://${repo.dir}` });

      const info = JSON.parse(await skopeo(['inspect', '--no-tags', '--tls-verify=false', `docker://${result.imageRef}`]));
      expect(info.Digest).toBe(result.digest);
      expect(info.Labels['org.opencontainers.image.revision']).toBe(repo.commit);
      expect(info.Labels['org.opencontainers.image.source']).toBe(`file://${repo.dir}`);

      const layout = join(tmp, 'copied');
      await skopeo(['copy', '--preserve-digests', '--src-tls-verify=false', `docker://${result.imageRef}`, `oci:${layout}:hello`]);
      const { stdout } = await execFileAsync('skopeo', ['inspect', '--raw', `oci:${layout}:hello`]);
      expect(computeDigest(Buffer.from(stdout))).toBe(result.digest);

      // The next build of this service prepares the layer builder to this image's measure.
      const built = opts.events.find((e) => e.type === 'image-built') as { files: number } | undefined;
      const hint = await readLayerHint(layerHintPath(buildCacheRoot(home()), { sourceUrl: `file://${repo.dir}`, pipeline: result.pipeline.name }));
      expect(hint?.files).toBe(built?.files);
      expect(hint!.tarBytes % 512).toBe(0);
      expect(hint!.tarBytes).toBeGreaterThan(512 * hint!.files);
    });

    it('puts the build output at the workingDir, runnable as the pipeline says', async () => {
      const result = await build(options({ home: home() }));
      const image = await pullImage(openImageStore(`${registry.host}/hello`, fast), result.digest);
      const root = join(tmp, 'rootfs');
      await unpackLayers(image.layers, root, { clean: true });
      expect(image.config.config?.WorkingDir).toBe('/app');
      expect(image.config.config?.Entrypoint).toEqual(['node', 'server.js']);
      expect(image.config.config?.ExposedPorts).toEqual({ '8080/tcp': {} });
      expect(JSON.parse(await readFile(join(root, 'app/package.json'), 'utf8')).version).toBe('1.0.0');
    });
  });

  describe('when the same commit is built again', () => {
    it('returns the recorded digest from the cache without running a stage', async () => {
      const first = await build(options({ home: home() }));
      const opts = options({ home: home() });
      const again = await build(opts);
      expect(again.cached).toBe(true);
      expect(again.digest).toBe(first.digest);
      expect(started(opts.events)).toEqual([]);
      expect(opts.events.some((e) => e.type === 'cache-hit')).toBe(true);
      expect(again.stages.map((s) => s.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    });

    it('pushes the cached image to a store that does not have it, still without stages', async () => {
      const opts = options({ home: home(), store: `${registry.host}/elsewhere` });
      const result = await build(opts);
      expect(result.cached).toBe(true);
      expect(started(opts.events)).toEqual([]);
      expect((await openImageStore(`${registry.host}/elsewhere`, fast).getManifest(result.digest))?.digest).toBe(result.digest);
    });
  });

  describe('when two builds of the same commit run at once', () => {
    it('runs the stages once; the other waits and reuses the result', async () => {
      const shared = join(tmp, 'home-concurrent');
      const a = options({ home: shared });
      const b = options({ home: shared });
      const [ra, rb] = await Promise.all([build(a), build(b)]);
      expect(ra.digest).toBe(rb.digest);
      expect([ra.cached, rb.cached].sort()).toEqual([false, true]);
      expect(started(a.events).length + started(b.events).length).toBe(3);
    });
  });

  describe('when the same commit is built from two clones with different HOME and cache', () => {
    it('gives the same digest', async () => {
      const digests: string[] = [];
      for (const name of ['clone-a', 'clone-b']) {
        const dir = join(tmp, name, 'deeper', name);
        await execFileAsync('git', ['clone', '-q', repo.dir, dir]);
        const result = await build({ repoDir: dir, commit: repo.commit, store: `oci:${join(tmp, name, 'images')}`, home: join(tmp, name, 'home'), env: { PATH: process.env.PATH, HOME: join(tmp, name) } });
        expect(result.cached).toBe(false);
        digests.push(result.digest);
      }
      expect(digests[1]).toBe(digests[0]);
    });
  });

  describe('stage conditions and environment', () => {
    it('skips a branch == main stage on another branch and keeps secrets out of the stages', async () => {
      const branchRepo = await createServiceRepo({
        dir: join(tmp, 'cond'),
        pipeline: `apiVersion: slipway.dev/v1
kind: Pipeline
metadata:
  name: cond
spec:
  stages:
    - name: build
      command: mkdir -p out && env | sort > out/env.txt
    - name: release-only
      condition: branch == main
      command: echo release > out/release.txt
  image:
    context: out
`,
      });
      const h = join(tmp, 'home-cond');
      const env = { PATH: process.env.PATH, HOME: tmp, SLIPWAY_REGISTRY_PASSWORD: 'hunter2', SLIPWAY_FLAVOR: 'blue', AWS_SECRET: 'x' };
      const store = `oci:${join(tmp, 'cond-images')}`;
      const onFeature = await build({ repoDir: branchRepo.dir, branch: 'feature/x', store, home: h, env });
      expect(onFeature.stages.map((s) => s.status)).toEqual(['succeeded', 'skipped']);
      const onMain = await build({ repoDir: branchRepo.dir, store, home: h, env });
      expect(onMain.stages.map((s) => s.status)).toEqual(['succeeded', 'succeeded']);
      expect(onMain.digest).not.toBe(onFeature.digest);

      const image = await pullImage(openImageStore(store), onFeature.digest);
      const root = join(tmp, 'cond-root');
      await unpackLayers(image.layers, root);
      const envText = await readFile(join(root, 'env.txt'), 'utf8');
      expect(envText).toContain('SLIPWAY_FLAVOR=blue');
      expect(envText).toContain(`SLIPWAY_COMMIT=${branchRepo.commit}`);
      expect(envText).toContain('SLIPWAY_BRANCH=feature/x');
      expect(envText).not.toContain('hunter2');
      expect(envText).not.toContain('AWS_SECRET');
    });
  });

});
