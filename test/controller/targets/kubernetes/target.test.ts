/**
 * The Kubernetes target against a real kube-apiserver + etcd. There is no kubelet or controller-manager:
 * where readiness matters the test writes the Deployment status itself ("simulated readiness").
 */
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../../../support/kube/apiserver.js';
import { ensureNamespace, simulateDeploymentStatus } from '../../../support/kube/cluster.js';
import { installHttpRouteCrd } from '../../../support/kube/gateway.js';
import {
  createKubeClient,
  createKubernetesTarget,
  type KubeClient,
  type KubeObject,
} from '../../../../controller/targets/kubernetes/index.js';
import type { ServiceRef, TrackSpec } from '../../../../controller/targets/types.js';

const OLD = `sha256:${'a1'.repeat(32)}`;
const NEW = `sha256:${'b2'.repeat(32)}`;

function spec(digest: string, replicas = 4): TrackSpec {
  return { repository: 'registry.example/shop/web', digest, replicas, port: 8080, healthPath: '/healthz', env: { LOG_LEVEL: 'info' } };
}

interface DeploymentView {
  spec: { replicas: number; template: { metadata: { labels: Record<string, string> }; spec: { containers: { image: string }[] } } };
}

describeWithKube('kubernetes target (real kube-apiserver)', () => {
  let kube: KubeApiserver;
  let client: KubeClient;
  let nsCount = 0;

  beforeAll(async () => {
    kube = await startKubeApiserver();
    client = createKubeClient(kube.kubeConfig());
    await installHttpRouteCrd(client);
  }, KUBE_START_TIMEOUT_MS);
  afterAll(async () => {
    await kube?.stop();
  });

  async function freshNamespace(): Promise<string> {
    const ns = `t${++nsCount}`;
    await ensureNamespace(client, ns);
    return ns;
  }
  const get = <T = KubeObject>(namespace: string, kind: string, name: string) =>
    client.get<KubeObject>({ apiVersion: kind === 'Deployment' ? 'apps/v1' : kind === 'HTTPRoute' ? 'gateway.networking.k8s.io/v1' : 'v1', kind, name, namespace }) as Promise<
      (KubeObject & T) | undefined
    >;
  const selectorOf = async (ns: string, name: string) => ((await get(ns, 'Service', name))?.spec as { selector: Record<string, string> }).selector;
  const replicasOf = async (ns: string, name: string) => (await get<DeploymentView>(ns, 'Deployment', name))?.spec.replicas;
  const ref: ServiceRef = { environment: 'staging', service: 'web' };

  describe('applying a stable track', () => {
    let ns: string;
    beforeAll(async () => {
      ns = await freshNamespace();
      await createKubernetesTarget({ client, namespace: ns }).ensureTrack(ref, 'stable', spec(OLD));
    });

    it('creates the stable Deployment with the image by digest and the app, track and digest labels', async () => {
      const d = await get<DeploymentView>(ns, 'Deployment', 'web');
      expect(d?.spec.template.spec.containers[0].image).toBe(`registry.example/shop/web@${OLD}`);
      expect(d?.spec.template.metadata.labels).toMatchObject({ app: 'web', 'slipway.dev/track': 'stable', 'slipway.dev/digest': OLD.slice(7, 70) });
      expect(d?.metadata.annotations?.['slipway.dev/digest']).toBe(OLD);
      expect(d?.spec.replicas).toBe(4);
    });

    it('creates a Service over both tracks and one per track', async () => {
      expect(await selectorOf(ns, 'web')).toEqual({ app: 'web' });
      expect(await selectorOf(ns, 'web-stable')).toEqual({ app: 'web', 'slipway.dev/track': 'stable' });
      expect(await selectorOf(ns, 'web-canary')).toEqual({ app: 'web', 'slipway.dev/track': 'canary' });
    });

    it('applies as field manager slipway with server-side apply', async () => {
      const d = await get(ns, 'Deployment', 'web');
      const managers = (d?.metadata.managedFields as { manager: string; operation: string }[]).map((m) => `${m.manager}/${m.operation}`);
      expect(managers).toContain('slipway/Apply');
      expect(managers.filter((m) => !m.startsWith('slipway/'))).toEqual([]);
    });

    it('reports the stable track not ready until the deployment controller has observed it (simulated readiness)', async () => {
      const target = createKubernetesTarget({ client, namespace: ns });
      expect((await target.observe(ref)).stable).toEqual({ digest: OLD, replicas: 4, readyReplicas: 0 });
      await simulateDeploymentStatus(client, ns, 'web', { stale: true });
      expect((await target.observe(ref)).stable?.readyReplicas).toBe(0);
      await simulateDeploymentStatus(client, ns, 'web', { ready: 2 });
      expect((await target.observe(ref)).stable?.readyReplicas).toBe(2);
      await simulateDeploymentStatus(client, ns, 'web');
      expect((await target.observe(ref)).stable).toEqual({ digest: OLD, replicas: 4, readyReplicas: 4 });
    });

    it('is idempotent: applying the same track again does not change the Deployment generation', async () => {
      const before = (await get(ns, 'Deployment', 'web'))?.metadata.generation;
      await createKubernetesTarget({ client, namespace: ns }).ensureTrack(ref, 'stable', spec(OLD));
      expect((await get(ns, 'Deployment', 'web'))?.metadata.generation).toBe(before);
    });

    it('refuses a digest that is not a full sha256 digest, applying nothing', async () => {
      const target = createKubernetesTarget({ client, namespace: ns });
      await expect(target.ensureTrack({ environment: 'staging', service: 'api' }, 'stable', { ...spec(OLD), digest: 'latest' })).rejects.toThrow(/full sha256 digest/);
      expect(await get(ns, 'Deployment', 'api')).toBeUndefined();
    });
  });

  describe('canary by replica ratio on a plain cluster', () => {
    it('steps canary and stable replicas with the weight and promotes once the new stable is ready (simulated readiness)', async () => {
      const ns = await freshNamespace();
      const target = createKubernetesTarget({ client, namespace: ns });
      await target.ensureTrack(ref, 'stable', spec(OLD));
      await target.ensureTrack(ref, 'canary', spec(NEW));
      expect([await replicasOf(ns, 'web'), await replicasOf(ns, 'web-canary')]).toEqual([4, 0]);

      const seen: [number, number | undefined, number | undefined][] = [];
      for (const weight of [25, 50, 75, 100]) {
        await target.setWeight(ref, weight);
        seen.push([weight, await replicasOf(ns, 'web'), await replicasOf(ns, 'web-canary')]);
      }
      expect(seen).toEqual([
        [25, 3, 1],
        [50, 2, 2],
        [75, 1, 3],
        [100, 0, 4],
      ]);
      await simulateDeploymentStatus(client, ns, 'web-canary');
      const observed = await target.observe(ref);
      expect(observed.canaryWeight).toBe(100);
      expect(observed.canary).toEqual({ digest: NEW, replicas: 4, readyReplicas: 4 });

      await target.promote(ref);
      // The new stable is rolling out: the canary keeps serving until it is ready.
      let after = await target.observe(ref);
      expect(after.stable?.digest).toBe(NEW);
      expect(after.canary).toBeDefined();
      await simulateDeploymentStatus(client, ns, 'web');
      after = await target.observe(ref);
      expect(after).toEqual({ stable: { digest: NEW, replicas: 4, readyReplicas: 4 }, canaryWeight: 0, endpoint: `http://web.${ns}.svc.cluster.local:8080` });
      expect(await get(ns, 'Deployment', 'web-canary')).toBeUndefined();
      expect(await replicasOf(ns, 'web')).toBe(4);
    });

    it('a controller restarted mid-rollout reads the weight back from the cluster', async () => {
      const ns = await freshNamespace();
      await createKubernetesTarget({ client, namespace: ns }).ensureTrack(ref, 'stable', spec(OLD));
      const first = createKubernetesTarget({ client, namespace: ns });
      await first.ensureTrack(ref, 'canary', spec(NEW));
      await first.setWeight(ref, 50);
      const restarted = createKubernetesTarget({ client, namespace: ns });
      expect((await restarted.observe(ref)).canaryWeight).toBe(50);
      // Re-applying the canary (a replayed intent) keeps the split it found.
      await restarted.ensureTrack(ref, 'canary', spec(NEW));
      expect([await replicasOf(ns, 'web'), await replicasOf(ns, 'web-canary')]).toEqual([2, 2]);
    });

    it('rolls back by sending all traffic to stable and removing the canary', async () => {
      const ns = await freshNamespace();
      const target = createKubernetesTarget({ client, namespace: ns });
      await target.ensureTrack(ref, 'stable', spec(OLD));
      await target.ensureTrack(ref, 'canary', spec(NEW));
      await target.setWeight(ref, 50);
      await target.setWeight(ref, 0);
      await target.removeTrack(ref, 'canary');
      expect(await replicasOf(ns, 'web')).toBe(4);
      expect(await get(ns, 'Deployment', 'web-canary')).toBeUndefined();
      expect((await target.observe(ref)).canaryWeight).toBe(0);
    });
  });

  describe('canary through a Gateway API HTTPRoute', () => {
    it('keeps both tracks at full size and steps the backendRef weights', async () => {
      const ns = await freshNamespace();
      const target = createKubernetesTarget({ client, namespace: ns, gateway: { name: 'public', namespace: 'infra' } });
      await target.ensureTrack(ref, 'stable', spec(OLD));
      await target.ensureTrack(ref, 'canary', spec(NEW));
      await target.setWeight(ref, 20);
      const route = await get<{ spec: { parentRefs: unknown[]; rules: { backendRefs: { name: string; weight: number }[] }[] } }>(ns, 'HTTPRoute', 'web');
      expect(route?.spec.parentRefs).toEqual([{ name: 'public', namespace: 'infra' }]);
      expect(route?.spec.rules[0].backendRefs.map((b) => [b.name, b.weight])).toEqual([
        ['web-stable', 80],
        ['web-canary', 20],
      ]);
      expect([await replicasOf(ns, 'web'), await replicasOf(ns, 'web-canary')]).toEqual([4, 4]);
    });
  });

  describe('blue-green', () => {
    it('switches the active Service selector to the new track at once, and back', async () => {
      const ns = await freshNamespace();
      const target = createKubernetesTarget({ client, namespace: ns, trafficModeOf: () => 'blueGreen' });
      await target.ensureTrack(ref, 'stable', spec(OLD));
      await target.ensureTrack(ref, 'canary', spec(NEW));
      expect(await selectorOf(ns, 'web')).toEqual({ app: 'web', 'slipway.dev/track': 'stable' });
      expect(await selectorOf(ns, 'web-preview')).toEqual({ app: 'web', 'slipway.dev/track': 'canary' });
      expect([await replicasOf(ns, 'web'), await replicasOf(ns, 'web-canary')]).toEqual([4, 4]);

      await target.setWeight(ref, 100);
      expect(await selectorOf(ns, 'web')).toEqual({ app: 'web', 'slipway.dev/track': 'canary' });
      expect(await selectorOf(ns, 'web-preview')).toEqual({ app: 'web', 'slipway.dev/track': 'stable' });

      await target.setWeight(ref, 0);
      expect(await selectorOf(ns, 'web')).toEqual({ app: 'web', 'slipway.dev/track': 'stable' });
    });

    it('promotes by rolling stable to the new digest, then pointing the Service back at stable (simulated readiness)', async () => {
      const ns = await freshNamespace();
      const target = createKubernetesTarget({ client, namespace: ns, trafficModeOf: () => 'blueGreen' });
      await target.ensureTrack(ref, 'stable', spec(OLD));
      await target.ensureTrack(ref, 'canary', spec(NEW));
      await target.setWeight(ref, 100);
      await target.promote(ref);
      expect(await selectorOf(ns, 'web')).toEqual({ app: 'web', 'slipway.dev/track': 'canary' });
      await simulateDeploymentStatus(client, ns, 'web');
      const observed = await target.observe(ref);
      expect(observed.stable?.digest).toBe(NEW);
      expect(observed.canary).toBeUndefined();
      expect(await selectorOf(ns, 'web')).toEqual({ app: 'web', 'slipway.dev/track': 'stable' });
    });
  });

  describe('when a service changes strategy between rollouts', () => {
    it('starts the next rollout in the new traffic mode and keeps a running one in its own', async () => {
      const ns = await freshNamespace();
      let strategy: 'canary' | 'blueGreen' = 'canary';
      const target = createKubernetesTarget({ client, namespace: ns, trafficModeOf: () => strategy });
      await target.ensureTrack(ref, 'stable', spec(OLD));
      await target.ensureTrack(ref, 'canary', spec(NEW));
      await target.setWeight(ref, 50);
      strategy = 'blueGreen';
      // Mid-rollout: still a replica-ratio canary.
      await target.ensureTrack(ref, 'canary', spec(NEW));
      expect([await replicasOf(ns, 'web'), await replicasOf(ns, 'web-canary')]).toEqual([2, 2]);
      await target.removeTrack(ref, 'canary');
      // The next rollout is blue-green: full-size preview, the Service selects stable only.
      await target.ensureTrack(ref, 'canary', spec(NEW));
      expect([await replicasOf(ns, 'web'), await replicasOf(ns, 'web-canary')]).toEqual([4, 4]);
      expect(await selectorOf(ns, 'web')).toEqual({ app: 'web', 'slipway.dev/track': 'stable' });
    });
  });

});
