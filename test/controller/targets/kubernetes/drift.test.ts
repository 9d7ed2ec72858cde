/**
 * The Kubernetes target against a real kube-apiserver + etcd: failures, drift, and objects it does not own. There is no kubelet or controller-manager:
 * where readiness matters the test writes the Deployment status itself ("simulated readiness").
 */
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../../../support/kube/apiserver.js';
import { ensureNamespace, simulateDeploymentStatus } from '../../../support/kube/cluster.js';
import {
  createKubeClient,
  createDriftWatcher,
  createKubernetesTarget,
  type DriftReport,
  type KubeClient,
  type KubeObject,
} from '../../../../controller/targets/kubernetes/index.js';
import type { ServiceRef, TrackSpec } from '../../../../controller/targets/types.js';
import { SlipwayError } from '../../../../lib/errors.js';

const OLD = `sha256:${'a1'.repeat(32)}`;
const NEW = `sha256:${'b2'.repeat(32)}`;

function spec(digest: string, replicas = 4): TrackSpec {
  return { repository: 'registry.example/shop/web', digest, replicas, port: 8080, healthPath: '/healthz', env: { LOG_LEVEL: 'info' } };
}

interface DeploymentView {
  spec: { replicas: number; template: { metadata: { labels: Record<string, string> }; spec: { containers: { image: string }[] } } };
}

describeWithKube('kubernetes target failures and drift (real kube-apiserver)', () => {
  let kube: KubeApiserver;
  let client: KubeClient;
  let nsCount = 0;

  beforeAll(async () => {
    kube = await startKubeApiserver();
    client = createKubeClient(kube.kubeConfig());
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

  describe('when a rollout never becomes ready', () => {
    it('reports the failure with the reason from the Deployment conditions (simulated progress deadline)', async () => {
      const ns = await freshNamespace();
      const target = createKubernetesTarget({ client, namespace: ns });
      await target.ensureTrack(ref, 'stable', spec(OLD));
      await target.ensureTrack(ref, 'canary', spec(NEW, 2));
      await target.setWeight(ref, 50);
      await simulateDeploymentStatus(client, ns, 'web-canary', { ready: 0, deadlineExceeded: 'ReplicaSet "web-canary-5d9" has timed out progressing.' });
      const canary = (await target.observe(ref)).canary;
      expect(canary?.failed).toBe('ProgressDeadlineExceeded: ReplicaSet "web-canary-5d9" has timed out progressing.');
      expect(canary?.readyReplicas).toBe(0);
    });
  });

  describe('drift', () => {
    it('detects a hand edit to a managed field, puts it back and reports it', async () => {
      const ns = await freshNamespace();
      const reports: DriftReport[] = [];
      const target = createKubernetesTarget({ client, namespace: ns, cluster: 'eu-1', onDrift: (r) => reports.push(r) });
      await target.ensureTrack(ref, 'stable', spec(OLD));
      expect(await target.repairDrift(ref)).toEqual([]);

      // What `kubectl edit` does: an update under another field manager.
      const person = createKubeClient(kube.kubeConfig(), { fieldManager: 'kubectl-edit' });
      const live = (await get<DeploymentView>(ns, 'Deployment', 'web'))!;
      live.spec.template.spec.containers[0].image = 'registry.example/shop/web:hotfix';
      live.spec.replicas = 9;
      await person.replace(live);

      const found = await target.repairDrift(ref);
      expect(found.map((r) => `${r.cluster} ${r.object} ${r.field}`).sort()).toEqual([
        'eu-1 Deployment/web spec.replicas',
        'eu-1 Deployment/web spec.template.spec.containers[0].image',
      ]);
      expect(reports).toEqual(expect.arrayContaining(found));
      const repaired = await get<DeploymentView>(ns, 'Deployment', 'web');
      expect(repaired?.spec.template.spec.containers[0].image).toBe(`registry.example/shop/web@${OLD}`);
      expect(repaired?.spec.replicas).toBe(4);
      expect(await target.repairDrift(ref)).toEqual([]);
    });

    it('puts back a Service selector switched by hand and a per-track Service deleted by hand', async () => {
      const ns = await freshNamespace();
      const target = createKubernetesTarget({ client, namespace: ns });
      await target.ensureTrack(ref, 'stable', spec(OLD));
      const person = createKubeClient(kube.kubeConfig(), { fieldManager: 'kubectl-edit' });
      const svc = (await get<{ spec: { selector: Record<string, string> } }>(ns, 'Service', 'web'))!;
      svc.spec.selector = { app: 'something-else' };
      await person.replace(svc);
      await person.delete({ apiVersion: 'v1', kind: 'Service', name: 'web-canary', namespace: ns });

      const found = await target.repairDrift(ref);
      expect(found.map((r) => `${r.object} ${r.field}`).sort()).toEqual(['Service/web spec.selector.app', 'Service/web-canary ']);
      expect(await selectorOf(ns, 'web')).toEqual({ app: 'web' });
      expect(await get(ns, 'Service', 'web-canary')).toBeDefined();
    });

    it('reports a conflicting hand edit met while applying a new track, and takes the field back', async () => {
      const ns = await freshNamespace();
      const reports: DriftReport[] = [];
      const target = createKubernetesTarget({ client, namespace: ns, onDrift: (r) => reports.push(r) });
      await target.ensureTrack(ref, 'stable', spec(OLD));
      const person = createKubeClient(kube.kubeConfig(), { fieldManager: 'kubectl-edit' });
      const live = (await get<DeploymentView>(ns, 'Deployment', 'web'))!;
      live.spec.replicas = 7;
      await person.replace(live);
      await target.ensureTrack(ref, 'stable', spec(NEW));
      expect(reports.map((r) => [r.object, r.field, r.manager])).toEqual([['Deployment/web', 'spec.replicas', 'kubectl-edit']]);
      expect(await replicasOf(ns, 'web')).toBe(4);
    });
  });

  describe('the drift watcher', () => {
    it('finds hand edits to settled services on its pass, puts them back, reports them, and goes on past a failing one', async () => {
      const ns = await freshNamespace();
      const target = createKubernetesTarget({ client, namespace: ns });
      const web = { environment: 'staging', service: 'web' };
      const api = { environment: 'staging', service: 'api' };
      await target.ensureTrack(web, 'stable', spec(OLD));
      await target.ensureTrack(api, 'stable', spec(OLD));
      // Someone replaced cart's Service with one of their own: Slipway must not take it over.
      const cart = { environment: 'staging', service: 'cart' };
      await target.ensureTrack(cart, 'stable', spec(OLD));
      await client.delete({ apiVersion: 'v1', kind: 'Service', name: 'cart', namespace: ns });
      await client.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'cart', namespace: ns }, spec: { ports: [{ port: 80, protocol: 'TCP' }] } } as never);
      const reported: string[] = [];
      const errors: string[] = [];
      const watcher = createDriftWatcher({
        target,
        services: () => [cart, web, api],
        onDrift: (r) => reported.push(`${r.service} ${r.object} ${r.field}`),
        onError: (ref) => errors.push(ref.service),
      });
      expect(await watcher.checkOnce()).toEqual([]);
      expect(errors).toEqual(['cart']);

      const person = createKubeClient(kube.kubeConfig(), { fieldManager: 'kubectl-edit' });
      const live = (await get<DeploymentView>(ns, 'Deployment', 'api'))!;
      live.spec.template.spec.containers[0].image = 'registry.example/shop/web:latest';
      await person.replace(live);

      await watcher.checkOnce();
      expect(reported).toEqual(['api Deployment/api spec.template.spec.containers[0].image']);
      expect(errors).toEqual(['cart', 'cart']);
      expect((await get<DeploymentView>(ns, 'Deployment', 'api'))?.spec.template.spec.containers[0].image).toBe(`registry.example/shop/web@${OLD}`);
    });
  });

  describe('objects Slipway does not manage', () => {
    it('refuses to take over a Service someone else created, with a clear error', async () => {
      const ns = await freshNamespace();
      await client.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: ns }, spec: { ports: [{ port: 80, protocol: 'TCP' }] } } as never);
      const target = createKubernetesTarget({ client, namespace: ns });
      const err = await target.ensureTrack(ref, 'stable', spec(OLD)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SlipwayError);
      expect((err as SlipwayError).code).toBe('KUBE_NOT_OURS');
      expect((err as Error).message).toMatch(/Service web .* not managed by Slipway/);
      expect(await get(ns, 'Deployment', 'web')).toBeUndefined();
    });

    it('removing a service deletes only the objects Slipway manages', async () => {
      const ns = await freshNamespace();
      const target = createKubernetesTarget({ client, namespace: ns });
      await target.ensureTrack(ref, 'stable', spec(OLD));
      await target.ensureTrack(ref, 'canary', spec(NEW));
      await target.removeService(ref);
      for (const [kind, name] of [
        ['Deployment', 'web'],
        ['Deployment', 'web-canary'],
        ['Service', 'web'],
        ['Service', 'web-stable'],
        ['Service', 'web-canary'],
      ]) {
        expect(await get(ns, kind, name)).toBeUndefined();
      }
      expect(await target.observe(ref)).toEqual({ canaryWeight: 0 });
    });
  });
});
