import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../../../../builder/index.js';
import { createBuiltinMetricsProvider } from '../../../../controller/analysis/index.js';
import { createLocalTarget, type LocalTarget } from '../../../../controller/targets/local/index.js';
import { openImageStore } from '../../../../lib/oci/index.js';
import { createServiceRepo, type ServiceRepo } from '../../../support/fixtures/service-repo.js';
import { freePort } from '../../../support/registry.js';
import { agent, load } from './helpers.js';

describe('the local target running what the builder built', () => {
  let repo: ServiceRepo;
  let home: string;
  let target: LocalTarget;
  const ref = { environment: 'staging', service: 'hello' };

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'slipway-local-built-'));
    repo = await createServiceRepo({ version: '1.0.0' });
    target = createLocalTarget({ home: join(home, 'slipway'), openStore: (r) => openImageStore(r), health: { startupProbeMs: 30 } });
  });

  afterAll(async () => {
    await target.close();
    await repo.cleanup();
    await rm(home, { recursive: true, force: true });
    agent.destroy();
  });

  it('serves the sample service through its proxy, and the builtin analysis provider sees the canary errors', async () => {
    // Where `slipway build` puts images by default ($SLIPWAY_HOME/images), next to the target's own cache.
    const store = `oci:${join(home, 'slipway', 'images')}`;
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home };
    const stable = await build({ repoDir: repo.dir, store, home: join(home, 'builder'), env });
    await repo.setVersion('1.1.0');
    const canary = await build({ repoDir: repo.dir, store, home: join(home, 'builder'), env });
    expect(canary.digest).not.toBe(stable.digest);

    const proxyPort = await freePort();
    const spec = (digest: string, extra: Record<string, string> = {}) => ({
      repository: store,
      digest,
      replicas: 2,
      port: 8080,
      healthPath: '/healthz',
      env: extra,
      proxyPort,
    });
    await target.ensureTrack(ref, 'stable', spec(stable.digest));
    await target.ensureTrack(ref, 'canary', spec(canary.digest, { HELLO_ERROR_RATE: '0.5' }));
    await target.setWeight(ref, 20);

    const start = new Date();
    const replies = await load(proxyPort, 500, 10);
    const end = new Date(Date.now() + 1);
    const byVersion: Record<string, number> = {};
    for (const r of replies) {
      const version = (JSON.parse(r.body) as { version: string }).version;
      byVersion[version] = (byVersion[version] ?? 0) + 1;
    }
    expect(byVersion).toEqual({ '1.0.0': 400, '1.1.0': 100 });

    const builtin = createBuiltinMetricsProvider(target.requestLog);
    const canaryMetrics = await builtin.fetch({ ...ref, track: 'canary', start, end });
    const stableMetrics = await builtin.fetch({ ...ref, track: 'stable', start, end });
    expect(canaryMetrics).toMatchObject({ requests: 100, errors: 50 });
    expect(stableMetrics).toMatchObject({ requests: 400, errors: 0 });
    expect(canaryMetrics.latenciesMs).toHaveLength(100);
  });
});
