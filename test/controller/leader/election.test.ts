/**
 * Leader election and sharding against a real kube-apiserver. The clock is controlled: each replica's
 * `step()` is one acquire-or-renew attempt, the test advances time between steps and never sleeps.
 */
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../../support/kube/apiserver.js';
import { ensureNamespace } from '../../support/kube/cluster.js';
import { createKubeClient, type KubeClient } from '../../../controller/targets/kubernetes/index.js';
import {
  createLeaderElector,
  createShardManager,
  leaseDecision,
  shardOf,
  type LeaseObject,
  type ShardManager,
} from '../../../controller/leader/index.js';
import { startCuttableProxy } from '../../support/kube/tcpproxy.js';

class TestClock {
  constructor(public ms = Date.parse('2026-03-01T10:00:00.000Z')) {}
  now = () => new Date(this.ms);
  advance(ms: number) {
    this.ms += ms;
  }
}

describe('lease decisions', () => {
  const lease = (holder: string, renew = 'r1', rv = '1'): LeaseObject => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'l', namespace: 'n', resourceVersion: rv },
    spec: { holderIdentity: holder, leaseDurationSeconds: 15, renewTime: renew, leaseTransitions: 3 },
  });

  it('creates a lease that does not exist', () => {
    expect(leaseDecision(undefined, undefined, 'a', 0, 15000)).toEqual({ kind: 'create' });
  });
  it('renews its own lease', () => {
    expect(leaseDecision(lease('a'), undefined, 'a', 0, 15000)).toEqual({ kind: 'renew' });
  });
  it('follows a holder it has just seen renew, until a lease duration passes without change', () => {
    const l = lease('b');
    const first = leaseDecision(l, undefined, 'a', 1000, 15000);
    expect(first).toEqual({ kind: 'follow', holder: 'b', expiresAt: 16000 });
    const key = `b|r1|1`;
    expect(leaseDecision(l, { key, at: 1000 }, 'a', 15999, 15000).kind).toBe('follow');
    expect(leaseDecision(l, { key, at: 1000 }, 'a', 16000, 15000)).toEqual({ kind: 'acquire', transitions: 4 });
  });
  it('counts expiry from when it saw the lease change, not from the renew time written in it (clock skew)', () => {
    const renewed = lease('b', 'r2', '2');
    expect(leaseDecision(renewed, { key: 'b|r1|1', at: 0 }, 'a', 20000, 15000).kind).toBe('follow');
  });
  it('takes a released lease at once', () => {
    expect(leaseDecision(lease(''), undefined, 'a', 0, 15000)).toEqual({ kind: 'acquire', transitions: 4 });
  });
});

describe('shard assignment', () => {
  it('puts every environment/cluster pair in exactly one shard, the same one every time', () => {
    const pairs = Array.from({ length: 200 }, (_, i) => [`env${i % 7}`, `cluster${i}`] as const);
    const counts = new Array(4).fill(0);
    for (const [e, c] of pairs) {
      const s = shardOf(e, c, 4);
      expect(s).toBe(shardOf(e, c, 4));
      counts[s]++;
    }
    // A hash spreads 200 pairs over 4 shards; none is empty.
    expect(counts.every((n) => n > 20)).toBe(true);
  });
  it('rejects a shard count that is not a positive integer', () => {
    expect(() => shardOf('e', 'c', 0)).toThrow(/positive integer/);
  });
});

describeWithKube('leader election on a Lease (real kube-apiserver)', () => {
  let kube: KubeApiserver;
  let client: KubeClient;
  const ns = 'slipway-system';

  beforeAll(async () => {
    kube = await startKubeApiserver();
    client = createKubeClient(kube.kubeConfig());
    await ensureNamespace(client, ns);
  }, KUBE_START_TIMEOUT_MS);
  afterAll(async () => {
    await kube?.stop();
  });

  const readLease = async (name: string) => (await client.get({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name, namespace: ns })) as LeaseObject | undefined;

  describe('with two controller replicas', () => {
    it('elects one leader, keeps it while it renews, and fails over when it stops renewing', async () => {
      const clock = new TestClock();
      const events: string[] = [];
      const a = createLeaderElector({ client, namespace: ns, name: 'slipway-controller', identity: 'pod-a', clock, onStartedLeading: () => events.push('a leads'), onStoppedLeading: () => events.push('a stops') });
      const b = createLeaderElector({ client, namespace: ns, name: 'slipway-controller', identity: 'pod-b', clock, onStartedLeading: () => events.push('b leads') });

      expect(await a.step()).toBe(true);
      expect(await b.step()).toBe(false);
      expect(b.leader()).toBe('pod-a');

      // A renews every retry period; B never gets it however long that goes on.
      for (let i = 0; i < 10; i++) {
        clock.advance(2000);
        expect(await a.step()).toBe(true);
        expect(await b.step()).toBe(false);
      }

      // A hangs. B takes over only once a full lease duration has passed since it last saw A renew.
      clock.advance(14_000);
      expect(await b.step()).toBe(false);
      clock.advance(1_000);
      expect(await b.step()).toBe(true);
      expect(b.leader()).toBe('pod-b');

      // A comes back and finds B leading.
      expect(await a.step()).toBe(false);
      expect(a.leader()).toBe('pod-b');
      expect(events).toEqual(['a leads', 'b leads', 'a stops']);

      const lease = await readLease('slipway-controller');
      expect(lease?.spec.holderIdentity).toBe('pod-b');
      expect(lease?.spec.leaseTransitions).toBe(1);
      expect(lease?.spec.leaseDurationSeconds).toBe(15);
    });

    it('writes acquire and renew times as MicroTime (microsecond precision)', async () => {
      const clock = new TestClock(Date.parse('2026-03-01T10:00:00.123Z'));
      const a = createLeaderElector({ client, namespace: ns, name: 'micro', identity: 'pod-a', clock });
      await a.step();
      const lease = await readLease('micro');
      expect(lease?.spec.renewTime).toBe('2026-03-01T10:00:00.123000Z');
      expect(lease?.spec.acquireTime).toBe('2026-03-01T10:00:00.123000Z');
    });

    it('lets exactly one of two replicas win an expired lease they race for', async () => {
      const clock = new TestClock();
      const old = createLeaderElector({ client, namespace: ns, name: 'race', identity: 'pod-old', clock });
      await old.step();
      const a = createLeaderElector({ client, namespace: ns, name: 'race', identity: 'pod-a', clock });
      const b = createLeaderElector({ client, namespace: ns, name: 'race', identity: 'pod-b', clock });
      await a.step();
      await b.step();
      clock.advance(15_000);
      const results = await Promise.all([a.step(), b.step()]);
      expect(results.filter(Boolean)).toHaveLength(1);
      const lease = await readLease('race');
      expect(lease?.spec.holderIdentity).toBe(results[0] ? 'pod-a' : 'pod-b');
    });

    it('a leader that cannot reach the API server stops leading after the renew deadline, before its lease expires', async () => {
      const clock = new TestClock();
      const errors: unknown[] = [];
      const lost: string[] = [];
      // The leader talks to the API server through a loopback proxy the test cuts.
      const proxy = await startCuttableProxy(Number(new URL(kube.server).port));
      try {
        const viaProxy = kube.kubeConfig();
        viaProxy.clusters[0] = { ...viaProxy.clusters[0], server: `https://127.0.0.1:${proxy.port}` };
        const a = createLeaderElector({
          client: createKubeClient(viaProxy),
          namespace: ns,
          name: 'deadline',
          identity: 'pod-a',
          clock,
          onStoppedLeading: () => lost.push('a stopped'),
          onError: (e) => errors.push(e),
        });
        expect(await a.step()).toBe(true);
        proxy.cut();
        clock.advance(2000);
        expect(await a.step()).toBe(true); // 2 s without a renewal: within the deadline
        clock.advance(7999);
        expect(await a.step()).toBe(true);
        clock.advance(1);
        expect(await a.step()).toBe(false); // 10 s: the renew deadline, 5 s before others may take over
        expect(lost).toEqual(['a stopped']);
        expect(errors.length).toBe(3);

        const b = createLeaderElector({ client, namespace: ns, name: 'deadline', identity: 'pod-b', clock });
        expect(await b.step()).toBe(false);
        clock.advance(15_000);
        expect(await b.step()).toBe(true);
      } finally {
        await proxy.close();
      }
    });

    it('hands the lease over at once when the leader releases it on shutdown', async () => {
      const clock = new TestClock();
      const a = createLeaderElector({ client, namespace: ns, name: 'release', identity: 'pod-a', clock });
      const b = createLeaderElector({ client, namespace: ns, name: 'release', identity: 'pod-b', clock });
      await a.step();
      expect(await b.step()).toBe(false);
      await a.release();
      expect(a.isLeader()).toBe(false);
      expect(await b.step()).toBe(true);
    });
  });

  describe('sharding environment/cluster pairs over 4 Leases with two replicas', () => {
    it('gives each replica half the shards, each pair exactly one owner, and all shards to the survivor when one dies', async () => {
      const clock = new TestClock();
      const mk = (identity: string): ShardManager =>
        createShardManager({ client, namespace: ns, identity, clock, shards: 4, replicas: 2, leasePrefix: 'shard' });
      const a = mk('pod-a');
      const b = mk('pod-b');
      await a.step();
      await b.step();
      expect(a.held()).toHaveLength(2);
      expect(b.held()).toHaveLength(2);
      expect([...a.held(), ...b.held()].sort()).toEqual([0, 1, 2, 3]);

      const pairs = Array.from({ length: 40 }, (_, i) => [`env-${i % 5}`, `cluster-${i}`] as const);
      for (const [env, cluster] of pairs) {
        expect(Number(a.owns(env, cluster)) + Number(b.owns(env, cluster))).toBe(1);
      }

      // Both keep renewing: nothing moves.
      for (let i = 0; i < 5; i++) {
        clock.advance(2000);
        await a.step();
        await b.step();
      }
      expect(a.held()).toHaveLength(2);
      expect(b.held()).toHaveLength(2);

      // A dies. Its shards expire after 15 s; B is at its share, so they count as orphaned a lease later.
      const before = b.held();
      for (let t = 0; t < 32_000; t += 2000) {
        clock.advance(2000);
        await b.step();
      }
      expect(b.held()).toEqual([0, 1, 2, 3]);
      for (const [env, cluster] of pairs) expect(b.owns(env, cluster)).toBe(true);
      expect(before).toHaveLength(2);

      // A restarts: it is below its share, but every lease is held and renewed, so it waits.
      const a2 = mk('pod-a');
      clock.advance(2000);
      await a2.step();
      expect(a2.held()).toEqual([]);
    });
  });
});

