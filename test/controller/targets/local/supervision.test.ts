import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, readFile, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { openImageStore, OciLayoutStore } from '../../../../lib/oci/index.js';
import { createLocalTarget, LOG_ROTATE_BYTES } from '../../../../controller/targets/local/index.js';
import type { ServiceRef } from '../../../../controller/targets/types.js';
import { createServer as createNetServer } from 'node:net';
import { freePort, startRegistry, type TestRegistry } from '../../../support/registry.js';
import { agent, connectionRefused, get, isAlive, load, startHarness, waitFor, type Harness } from './helpers.js';
import { pushServiceImage } from './service-image.js';

const ref: ServiceRef = { environment: 'staging', service: 'api' };

function versionsAndPorts(bodies: string[]): { versions: Set<string>; ports: Set<number> } {
  const parsed = bodies.map((b) => JSON.parse(b) as { version: string; port: number });
  return { versions: new Set(parsed.map((p) => p.version)), ports: new Set(parsed.map((p) => p.port)) };
}

describe('supervising local instances', () => {
  let h: Harness;
  let healthDir: string;

  beforeAll(async () => {
    h = await startHarness();
    healthDir = await mkdtemp(join(tmpdir(), 'slipway-health-'));
  });

  afterAll(async () => {
    await h.dispose();
    await rm(healthDir, { recursive: true, force: true });
    agent.destroy();
  });

  describe('when an instance crashes', () => {
    it('restarts it with backoff on a new port, and counts the restart', async () => {
      await h.target.ensureTrack(ref, 'stable', h.spec(h.v1));
      const [before] = h.target.instances(ref, 'stable');
      await appendFile(before!.logs.out, Buffer.alloc(LOG_ROTATE_BYTES, 'x'));
      await get(h.proxyPort, '/crash');
      const after = await waitFor('the restarted instance to be healthy', () => {
        const [i] = h.target.instances(ref, 'stable');
        return i && i.restarts === 1 && i.state === 'healthy' ? i : undefined;
      });
      expect(after.pid).not.toBe(before!.pid);
      expect(isAlive(before!.pid!)).toBe(false);
      expect(after.lastExit).toContain('exited with code 3');
      expect((await stat(`${after.logs.out}.1`)).size).toBeGreaterThanOrEqual(LOG_ROTATE_BYTES); // the big log rotated at restart
      expect((await stat(after.logs.out)).size).toBeLessThan(4096);
      const observation = await h.target.observe(ref);
      expect(observation.stable).toMatchObject({ readyReplicas: 1, replicas: 1, restarts: 1 });
      expect((await get(h.proxyPort, '/')).status).toBe(200);
    });
  });

  describe('when an instance crashes at every start', () => {
    it('fails the track with the exit reason and the end of its stderr', async () => {
      const failing = h.target.ensureTrack(ref, 'canary', h.spec(h.v2, { env: { EXIT_AT_START: '2' } }));
      await expect(failing).rejects.toMatchObject({ code: 'TRACK_FAILED' });
      await expect(failing).rejects.toThrow(/crash-looping.*exited with code 2.*cannot open the database/s);
      const observation = await h.target.observe(ref);
      expect(observation.canary?.failed).toMatch(/crash-looping/);
      expect(observation.canary?.readyReplicas).toBe(0);
      await h.target.removeTrack(ref, 'canary');
    });
  });

  describe('an instance that never passes its health check', () => {
    it('never receives a request, even at full canary weight, and removeTrack stops it', async () => {
      const ensuring = h.target.ensureTrack(ref, 'canary', h.spec(h.v2, { env: { NEVER_HEALTHY: '1' } }));
      ensuring.catch(() => undefined);
      const [canary] = await waitFor('the canary instance to run', () => {
        const list = h.target.instances(ref, 'canary');
        return list.length === 1 && list[0]!.pid !== undefined ? list : undefined;
      });
      await h.target.setWeight(ref, 100);
      const replies = await load(h.proxyPort, 100, 4);
      expect(versionsAndPorts(replies.map((r) => r.body)).versions).toEqual(new Set(['v1']));
      const forced = await get(h.proxyPort, '/', { 'x-slipway-track': 'canary' });
      expect(forced.status).toBe(503);
      expect(forced.body).toContain('no healthy instance of the canary track');
      expect(await readFile(canary!.logs.out, 'utf8')).not.toContain('served');
      expect((await h.target.observe(ref)).canary).toMatchObject({ replicas: 1, readyReplicas: 0 });

      await h.target.removeTrack(ref, 'canary');
      await expect(ensuring).rejects.toMatchObject({ code: 'TRACK_REMOVED' });
      expect(isAlive(canary!.pid!)).toBe(false);
      const observation = await h.target.observe(ref);
      expect(observation.canary).toBeUndefined();
      expect(observation.canaryWeight).toBe(0);
    });
  });

  describe('when a newer version arrives while the canary is still starting', () => {
    it('supersedes the starting one at once and runs the newer one', async () => {
      const first = h.target.ensureTrack(ref, 'canary', h.spec(h.v2, { env: { NEVER_HEALTHY: '1' } }));
      first.catch(() => undefined);
      const [starting] = await waitFor('the first canary to run', () => {
        const list = h.target.instances(ref, 'canary');
        return list.length === 1 && list[0]!.pid !== undefined ? list : undefined;
      });
      const second = h.target.ensureTrack(ref, 'canary', h.spec(h.v2, { env: { RELEASE: 'fixed' } }));
      await expect(first).rejects.toMatchObject({ code: 'TRACK_SUPERSEDED' });
      await second;
      expect(isAlive(starting!.pid!)).toBe(false);
      expect((await h.target.observe(ref)).canary).toMatchObject({ digest: h.v2.digest, replicas: 1, readyReplicas: 1 });
      await h.target.removeTrack(ref, 'canary');
    });
  });

  describe('when a healthy instance starts failing its health check', () => {
    it('takes it out of rotation until it passes again', async () => {
      await h.target.ensureTrack(ref, 'stable', h.spec(h.v1, { replicas: 2, env: { HEALTH_DIR: healthDir } }));
      const [sick, well] = h.target.instances(ref, 'stable');
      await writeFile(join(healthDir, String(sick!.port)), 'fail');
      await waitFor('the instance to turn unhealthy', () => h.target.instances(ref, 'stable')[0]!.state === 'unhealthy');
      expect((await h.target.observe(ref)).stable).toMatchObject({ replicas: 2, readyReplicas: 1 });
      const during = await load(h.proxyPort, 100, 4);
      expect(versionsAndPorts(during.map((r) => r.body)).ports).toEqual(new Set([well!.port]));

      await unlink(join(healthDir, String(sick!.port)));
      await waitFor('the instance to be healthy again', () => h.target.instances(ref, 'stable')[0]!.state === 'healthy');
      const after = await load(h.proxyPort, 100, 4);
      expect(versionsAndPorts(after.map((r) => r.body)).ports).toEqual(new Set([sick!.port, well!.port]));
    });
  });

  describe('when spec.proxyPort changes', () => {
    it('moves the proxy to the new port, keeping the instances', async () => {
      const pids = h.target.instances(ref, 'stable').map((i) => i.pid);
      const newPort = await freePort();
      await h.target.ensureTrack(ref, 'stable', h.spec(h.v1, { replicas: 2, env: { HEALTH_DIR: healthDir }, proxyPort: newPort }));
      expect((await h.target.observe(ref)).endpoint).toBe(`http://127.0.0.1:${newPort}`);
      expect(h.target.instances(ref, 'stable').map((i) => i.pid)).toEqual(pids);
      expect((await get(newPort, '/')).status).toBe(200);
      expect(await connectionRefused(h.proxyPort)).toBe(true);
      await h.target.ensureTrack(ref, 'stable', h.spec(h.v1, { replicas: 2, env: { HEALTH_DIR: healthDir } }));
      expect((await get(h.proxyPort, '/')).status).toBe(200);
    });

    it('fails ensureTrack with the port named when another program holds it', async () => {
      const holder = createNetServer();
      const taken = await freePort();
      await new Promise<void>((resolve) => holder.listen(taken, '127.0.0.1', () => resolve()));
      try {
        await expect(h.target.ensureTrack(ref, 'stable', h.spec(h.v1, { replicas: 2, env: { HEALTH_DIR: healthDir }, proxyPort: taken }))).rejects.toMatchObject({
          code: 'PROXY_PORT_IN_USE',
          message: expect.stringContaining(`127.0.0.1:${taken}`),
        });
        expect((await get(h.proxyPort, '/')).status).toBe(200); // the old proxy still serves
      } finally {
        await new Promise((resolve) => holder.close(resolve));
      }
    });
  });

  describe('when instances leave (a track removed, a scale-down)', () => {
    it('stops every process of it and routes nothing there', async () => {
      await h.target.ensureTrack(ref, 'canary', h.spec(h.v2, { replicas: 2 }));
      await h.target.setWeight(ref, 50);
      const pids = h.target.instances(ref, 'canary').map((i) => i.pid!);
      expect(pids).toHaveLength(2);
      await h.target.removeTrack(ref, 'canary');
      for (const pid of pids) expect(isAlive(pid)).toBe(false);
      expect(h.target.instances(ref, 'canary')).toEqual([]);
      const replies = await load(h.proxyPort, 50, 4);
      expect(versionsAndPorts(replies.map((r) => r.body)).versions).toEqual(new Set(['v1']));
      await h.target.removeTrack(ref, 'canary'); // idempotent
    });

    it('scales down without cutting the requests the leaving instance is answering', async () => {
      await h.target.ensureTrack(ref, 'canary', h.spec(h.v2, { replicas: 2, env: { TERM_EXITS_AT_ONCE: '1' } }));
      const instances = h.target.instances(ref, 'canary');
      const slow = [get(h.proxyPort, '/slow', { 'x-slipway-track': 'canary' }), get(h.proxyPort, '/slow', { 'x-slipway-track': 'canary' })];
      await waitFor('both instances to be answering', async () => {
        const logs = await Promise.all(instances.map((i) => readFile(i.logs.out, 'utf8')));
        return logs.every((text) => text.includes('served GET /slow'));
      });
      await h.target.ensureTrack(ref, 'canary', h.spec(h.v2, { replicas: 1, env: { TERM_EXITS_AT_ONCE: '1' } }));
      expect((await Promise.all(slow)).map((r) => r.status)).toEqual([200, 200]);
      expect(h.target.instances(ref, 'canary')).toHaveLength(1);
      expect(isAlive(instances[1]!.pid!)).toBe(false);
      await h.target.removeTrack(ref, 'canary');
    });

    it('lets the instances finish the requests they are answering before stopping them', async () => {
      await h.target.ensureTrack(ref, 'canary', h.spec(h.v2, { env: { TERM_EXITS_AT_ONCE: '1' } }));
      const [instance] = h.target.instances(ref, 'canary');
      const slow = get(h.proxyPort, '/slow', { 'x-slipway-track': 'canary' });
      await waitFor('the slow request to reach the canary', async () => (await readFile(instance!.logs.out, 'utf8')).includes('served GET /slow'));
      await h.target.removeTrack(ref, 'canary');
      const reply = await slow;
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.body)).toMatchObject({ version: 'v2' });
      expect(isAlive(instance!.pid!)).toBe(false);
    });
  });
});

describe('pulling images', () => {
  let registry: TestRegistry;
  let home: string;

  beforeAll(async () => {
    registry = await startRegistry();
    home = await mkdtemp(join(tmpdir(), 'slipway-local-pull-'));
  });

  afterAll(async () => {
    await registry.stop();
    await rm(home, { recursive: true, force: true });
  });

  it('runs an image pulled by digest from a registry, unpacked once into a cache keyed by digest', async () => {
    const repository = `${registry.host}/shop/web`;
    const image = await pushServiceImage(openImageStore(repository), 'from-registry');
    const target = createLocalTarget({ home: join(home, 'a'), openStore: (r) => openImageStore(r), health: { startupProbeMs: 30 } });
    try {
      await target.ensureTrack(ref, 'stable', { repository, digest: image.digest, replicas: 1, port: 8080, healthPath: '/healthz', env: {} });
      const endpoint = (await target.observe(ref)).endpoint!;
      const reply = await get(Number(new URL(endpoint).port), '/');
      expect(JSON.parse(reply.body)).toMatchObject({ version: 'from-registry' });
      expect(await readdir(join(home, 'a', 'local', 'images'))).toEqual([`sha256-${image.digest.slice(7)}`]);
    } finally {
      await target.close();
    }
  });

  it('prunes unpacked images no process uses beyond the most recent keepUnusedImages, never one in use', async () => {
    const store = new OciLayoutStore(join(home, 'prune-store'));
    const [v1, v2, v3] = [await pushServiceImage(store, 'p1'), await pushServiceImage(store, 'p2'), await pushServiceImage(store, 'p3')];
    const target = createLocalTarget({ home: join(home, 'd'), openStore: (r) => openImageStore(r), keepUnusedImages: 1, health: { startupProbeMs: 30 } });
    const spec = (digest: string) => ({ repository: store.repository, digest, replicas: 1, port: 8080, healthPath: '/healthz', env: {} });
    const cached = async () => (await readdir(join(home, 'd', 'local', 'images'))).filter((n) => n.startsWith('sha256-')).sort();
    const dirOf = (digest: string) => `sha256-${digest.slice(7)}`;
    try {
      await target.ensureTrack(ref, 'stable', spec(v1.digest));
      await target.ensureTrack(ref, 'canary', spec(v2.digest));
      await target.removeTrack(ref, 'canary');
      await target.ensureTrack(ref, 'canary', spec(v3.digest));
      await target.removeTrack(ref, 'canary');
      // v1 runs; v3 is the most recent unused one; v2 goes.
      expect(await waitFor('v2 to be pruned', async () => ((await cached()).includes(dirOf(v2.digest)) ? undefined : cached()))).toEqual(
        [dirOf(v1.digest), dirOf(v3.digest)].sort(),
      );
    } finally {
      await target.close();
    }
  });

  it('refuses an image whose blob does not match its digest, and caches nothing', async () => {
    const storeDir = join(home, 'tampered-store');
    const store = new OciLayoutStore(storeDir);
    const image = await pushServiceImage(store, 'tampered');
    const manifest = JSON.parse((await store.getManifest(image.digest))!.bytes.toString('utf8')) as { config: { digest: string } };
    const configPath = join(storeDir, 'blobs', 'sha256', manifest.config.digest.slice(7));
    const original = await readFile(configPath, 'utf8');
    await writeFile(configPath, original.replace('tampered', 'tamperex'));
    const target = createLocalTarget({ home: join(home, 'b'), openStore: (r) => openImageStore(r) });
    try {
      const spec = { repository: store.repository, digest: image.digest, replicas: 1, port: 8080, healthPath: '/healthz', env: {} };
      await expect(target.ensureTrack(ref, 'stable', spec)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
      expect((await readdir(join(home, 'b', 'local', 'images')).catch(() => [])).filter((n) => !n.startsWith('.'))).toEqual([]);
      expect(target.instances(ref, 'stable')).toEqual([]);
    } finally {
      await target.close();
    }
  });

  it('refuses a spec that names a tag instead of a digest, saying which field', async () => {
    const target = createLocalTarget({ home: join(home, 'c'), openStore: (r) => openImageStore(r) });
    try {
      const spec = { repository: 'oci:/nowhere', digest: 'latest', replicas: 1, port: 8080, healthPath: '/healthz', env: {} };
      await expect(target.ensureTrack(ref, 'stable', spec)).rejects.toThrow(/staging\/api stable: spec.digest must be a full sha256 digest/);
    } finally {
      await target.close();
    }
  });
});

describe('process hygiene', () => {
  it('leaves no process running after close', async () => {
    const h = await startHarness();
    try {
      await h.target.ensureTrack(ref, 'stable', h.spec(h.v1, { replicas: 2 }));
      await h.target.ensureTrack(ref, 'canary', h.spec(h.v2, { replicas: 1 }));
      const pids = [...h.target.instances(ref, 'stable'), ...h.target.instances(ref, 'canary')].map((i) => i.pid!);
      expect(pids.every(isAlive)).toBe(true);
      await h.target.close();
      for (const pid of pids) expect(isAlive(pid)).toBe(false);
      expect(await connectionRefused(h.proxyPort)).toBe(true);
      await expect(h.target.ensureTrack(ref, 'stable', h.spec(h.v1))).rejects.toMatchObject({ code: 'TARGET_CLOSED' });
    } finally {
      await h.dispose();
    }
  });

  it('removes a service that left: its processes, its proxy, its series and its request log', async () => {
    const h = await startHarness();
    const other: ServiceRef = { environment: 'staging', service: 'stays' };
    try {
      await h.target.ensureTrack(ref, 'stable', h.spec(h.v1));
      await h.target.ensureTrack(ref, 'canary', h.spec(h.v2));
      await h.target.ensureTrack(other, 'stable', h.spec(h.v1, { proxyPort: undefined }));
      await h.target.setWeight(ref, 50);
      await load(h.proxyPort, 10, 2);
      const pids = [...h.target.instances(ref, 'stable'), ...h.target.instances(ref, 'canary')].map((i) => i.pid!);

      await h.target.removeService(ref);
      for (const pid of pids) expect(isAlive(pid)).toBe(false);
      expect(await connectionRefused(h.proxyPort)).toBe(true);
      expect(await h.target.observe(ref)).toEqual({ canaryWeight: 0 });
      expect(h.target.requestLog.samples(ref, 'stable', new Date(0), new Date(Date.now() + 1))).toEqual([]);
      const text = await h.target.metricsRegistry.metrics();
      expect(text).not.toContain('service="api"');
      expect(text).toContain('slipway_proxy_healthy_instances{environment="staging",service="stays",track="stable"} 1');
      expect((await h.target.observe(other)).stable).toMatchObject({ readyReplicas: 1 });
      await h.target.removeService(ref); // idempotent
    } finally {
      await h.dispose();
    }
  });

  it('kills the instances of a controller that was SIGKILLed, when the next one starts on the same home', async () => {
    const home = await mkdtemp(join(tmpdir(), 'slipway-local-orphans-'));
    try {
      const store = new OciLayoutStore(join(home, 'store'));
      const image = await pushServiceImage(store, 'orphan');
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/controller/targets/local/orphan-controller.ts', join(home, 'slipway'), store.repository, image.digest], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`orphan controller exited with ${code} before reporting its instances`)));
      });
      const pids = JSON.parse(line) as number[];
      expect(pids).toHaveLength(2);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      expect(pids.every(isAlive)).toBe(true);

      const next = createLocalTarget({ home: join(home, 'slipway'), openStore: (r) => openImageStore(r) });
      try {
        expect(next.reapedOrphans.map((o) => o.pid).sort()).toEqual([...pids].sort());
        await waitFor('the orphans to die', () => pids.every((pid) => !isAlive(pid)));
      } finally {
        await next.close();
      }
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
