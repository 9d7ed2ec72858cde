/**
 * Two controller replicas share the environment/cluster pairs through shard Leases on a real kube-apiserver; each
 * pair's worker keeps its records in its own cluster-scoped ConfigMap. Controlled clock: no sleeps.
 */
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../../support/kube/apiserver.js';
import { ensureNamespace } from '../../support/kube/cluster.js';
import { createClusterRecordStore, createKubeClient, type KubeClient } from '../../../controller/targets/kubernetes/index.js';
import { createShardManager, createShardedRunner, type Pair, type ShardedRunner } from '../../../controller/leader/index.js';

const NS = 'slipway-system';
const PAIRS: Pair[] = ['staging', 'production'].flatMap((environment) => ['eu-1', 'us-1', 'ap-1'].map((cluster) => ({ environment, cluster })));

describeWithKube('running environment/cluster pairs over shards (real kube-apiserver)', () => {
  let kube: KubeApiserver;
  let client: KubeClient;
  beforeAll(async () => {
    kube = await startKubeApiserver();
    client = createKubeClient(kube.kubeConfig());
    await ensureNamespace(client, NS);
  }, KUBE_START_TIMEOUT_MS);
  afterAll(async () => {
    await kube?.stop();
  });

  it('runs every pair on exactly one replica, moves the pairs of a replica that dies, and keeps each pair’s records apart', async () => {
    let now = Date.parse('2026-11-23T10:00:00Z');
    const clock = { now: () => new Date(now) };
    const log: string[] = [];
    const replica = (identity: string): ShardedRunner =>
      createShardedRunner({
        shards: createShardManager({ client, namespace: NS, identity, clock, shards: 4, replicas: 2 }),
        pairs: () => PAIRS,
        start: async (pair) => {
          // A worker writes its pair's record in the pair's own scope, as a Reconciler with a scoped store would.
          const store = createClusterRecordStore<{ environment: string; service: string; by: string }, { environment: string }>({ client, namespace: NS, scope: pair.cluster });
          await store.saveService({ environment: pair.environment, service: 'web', by: identity });
          log.push(`${identity} start ${pair.environment}/${pair.cluster}`);
          return { stop: async () => void log.push(`${identity} stop ${pair.environment}/${pair.cluster}`) };
        },
      });
    const a = replica('pod-a');
    const b = replica('pod-b');
    await a.step();
    await b.step();
    const key = (p: Pair) => `${p.environment}/${p.cluster}`;
    const all = [...a.running(), ...b.running()].map(key).sort();
    expect(all).toEqual(PAIRS.map(key).sort());
    expect(a.running().length).toBeGreaterThan(0);
    expect(b.running().length).toBeGreaterThan(0);

    // Each pair's record sits in its cluster's scope, written by the replica running it.
    for (const p of PAIRS) {
      const store = createClusterRecordStore<{ environment: string; service: string; by: string }, { environment: string }>({ client, namespace: NS, scope: p.cluster });
      const owner = a.running().some((r) => key(r) === key(p)) ? 'pod-a' : 'pod-b';
      expect((await store.loadService(p.environment, 'web'))?.by).toBe(owner);
    }

    // pod-a stops renewing. Its shards expire (15 s) and, pod-b being at its share, count as orphaned 15 s later.
    const fromA = a.running().map(key);
    for (let t = 0; t < 34_000; t += 2000) {
      now += 2000;
      await b.step();
    }
    expect(b.running().map(key).sort()).toEqual(PAIRS.map(key).sort());
    for (const k of fromA) expect(log).toContain(`pod-b start ${k}`);

    // pod-a comes back after its lease was taken: it finds its shards gone and stops its workers.
    now += 2000;
    await a.step();
    expect(a.running()).toEqual([]);
    for (const k of fromA) expect(log).toContain(`pod-a stop ${k}`);

    await b.stop();
    expect(b.running()).toEqual([]);
  });
  describe('when a replica cannot renew (its API calls hang, or it was paused)', () => {
    it('revokes its workers synchronously once the renew deadline passed, before anyone else may take the shard', async () => {
      let now = Date.parse('2026-11-23T12:00:00Z');
      const clock = { now: () => new Date(now) };
      const events: string[] = [];
      const runner = createShardedRunner({
        shards: createShardManager({ client, namespace: NS, identity: 'pod-hung', clock, shards: 1, replicas: 1, leasePrefix: 'hung' }),
        pairs: () => [{ environment: 'staging', cluster: 'eu-1' }],
        start: (pair) => ({
          revoke: (reason) => void events.push(`revoke ${pair.environment}: ${reason}`),
          stop: async () => void events.push(`stop ${pair.environment}`),
        }),
      });
      expect((await runner.step()).map((p) => p.environment)).toEqual(['staging']);
      // No round for 9.9 s: still inside the renew deadline (10 s).
      now += 9_900;
      await runner.enforce();
      expect(events).toEqual([]);
      now += 100;
      await runner.enforce();
      expect(events).toEqual(['revoke staging: the shard Lease was not renewed within the renew deadline', 'stop staging']);
      expect(runner.running()).toEqual([]);
      // Still 5 s before the lease (15 s) could expire for anyone else.
      expect(runner.ownerOf({ environment: 'staging', cluster: 'eu-1' })).toMatchObject({ shard: 0, here: false });
      await runner.stop();
    });
  });
});
