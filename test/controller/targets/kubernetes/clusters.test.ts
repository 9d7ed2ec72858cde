/** An environment spanning several clusters, configured from environment.yaml's cluster entries (real kube-apiserver). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../../../support/kube/apiserver.js';
import { ensureNamespace, simulateDeploymentStatus } from '../../../support/kube/cluster.js';
import {
  createEnvironmentTarget,
  createKubeClient,
  createKubernetesTargetResolver,
  kubeConfigFor,
  mergeObservations,
  type EnvironmentView,
  type KubeClient,
  type KubeObject,
} from '../../../../controller/targets/kubernetes/index.js';
import type { ServiceConfig, Strategy } from '../../../../schemas/index.js';
import { SlipwayError } from '../../../../lib/errors.js';
import type { TrackSpec } from '../../../../controller/targets/types.js';

const DIGEST = `sha256:${'c3'.repeat(32)}`;
const spec: TrackSpec = { repository: 'registry.example/web', digest: DIGEST, replicas: 2, port: 8080, healthPath: '/healthz', env: {} };

describe('merging observations of several clusters', () => {
  const track = (readyReplicas: number, digest = DIGEST, failed?: string) => ({ digest, replicas: 2, readyReplicas, ...(failed ? { failed } : {}) });
  it('counts a track as ready as its slowest cluster', () => {
    expect(mergeObservations([{ stable: track(2), canaryWeight: 0 }, { stable: track(1), canaryWeight: 0 }], ['eu', 'us']).stable).toEqual(track(1));
  });
  it('counts a cluster still on another digest as not ready', () => {
    expect(mergeObservations([{ stable: track(2) }, { stable: track(2, `sha256:${'d'.repeat(64)}`) }].map((o) => ({ ...o, canaryWeight: 0 })), ['eu', 'us']).stable?.readyReplicas).toBe(0);
  });
  it('fails the track when any cluster fails, naming the cluster', () => {
    const merged = mergeObservations([{ stable: track(2), canaryWeight: 0 }, { stable: track(0, DIGEST, 'ProgressDeadlineExceeded: x'), canaryWeight: 0 }], ['eu', 'us']);
    expect(merged.stable?.failed).toBe('cluster us: ProgressDeadlineExceeded: x');
  });
});

describeWithKube('an environment on two clusters (real kube-apiserver)', () => {
  let kube: KubeApiserver;
  let admin: KubeClient;
  beforeAll(async () => {
    kube = await startKubeApiserver();
    admin = createKubeClient(kube.kubeConfig());
    await ensureNamespace(admin, 'eu');
    await ensureNamespace(admin, 'us');
  }, KUBE_START_TIMEOUT_MS);
  afterAll(async () => {
    await kube?.stop();
  });

  it('loads each cluster from its kubeconfig file and context, applies to both, and is ready only when both are (simulated readiness)', async () => {
    const target = createEnvironmentTarget({
      clusters: [
        { name: 'eu-1', kubeconfig: kube.kubeconfigPath, context: 'test', namespace: 'eu' },
        { name: 'us-1', kubeconfig: kube.kubeconfigPath, namespace: 'us' },
      ],
    });
    const ref = { environment: 'production', service: 'web' };
    await target.ensureTrack(ref, 'stable', spec);
    for (const ns of ['eu', 'us']) expect(await admin.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns })).toBeDefined();
    await simulateDeploymentStatus(admin, 'eu', 'web');
    expect((await target.observe(ref)).stable?.readyReplicas).toBe(0);
    await simulateDeploymentStatus(admin, 'us', 'web');
    expect((await target.observe(ref)).stable?.readyReplicas).toBe(2);
  });

  it('resolves an environment from environment.yaml, with each service traffic mode from its strategy and only the clusters asked for', async () => {
    const clusters = [
      { name: 'eu-1', kubeconfig: kube.kubeconfigPath, namespace: 'eu' },
      { name: 'us-1', kubeconfig: kube.kubeconfigPath, namespace: 'us' },
    ];
    const service = (name: string, strategy: Strategy): ServiceConfig => ({
      apiVersion: 'slipway.dev/v1',
      kind: 'Service',
      metadata: { name },
      spec: { image: { repository: 'r.example/x', digest: DIGEST }, port: 8080, strategy },
    });
    const env: EnvironmentView = {
      name: 'prod',
      config: { apiVersion: 'slipway.dev/v1', kind: 'Environment', metadata: { name: 'prod' }, spec: { target: { type: 'kubernetes', kubernetes: { clusters } } } },
      services: {
        shop: service('shop', { blueGreen: {} }),
        cart: service('cart', { canary: { steps: [{ setWeight: 50 }, { setWeight: 100 }] } }),
      },
    };
    const targetFor = createKubernetesTargetResolver({ lookup: (name) => (name === 'prod' ? env : undefined), clusterFilter: (_e, c) => c.name === 'eu-1' });
    const target = targetFor('prod');
    expect(targetFor('prod')).toBe(target);
    for (const svc of ['shop', 'cart']) {
      await target.ensureTrack({ environment: 'prod', service: svc }, 'stable', { ...spec, replicas: 2 });
      await target.ensureTrack({ environment: 'prod', service: svc }, 'canary', { ...spec, digest: `sha256:${'d4'.repeat(32)}`, replicas: 2 });
      await target.setWeight({ environment: 'prod', service: svc }, 50);
    }
    const selector = async (name: string) => ((await admin.get<KubeObject>({ apiVersion: 'v1', kind: 'Service', name, namespace: 'eu' }))?.spec as { selector: Record<string, string> }).selector;
    const replicas = async (name: string) => ((await admin.get<KubeObject>({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: 'eu' }))?.spec as { replicas: number }).replicas;
    // Blue-green: a 50% weight is not a switch; the active Service stays on stable, both tracks full size.
    expect(await selector('shop')).toEqual({ app: 'shop', 'slipway.dev/track': 'stable' });
    expect([await replicas('shop'), await replicas('shop-canary')]).toEqual([2, 2]);
    // Canary by replicas: half and half.
    expect([await replicas('cart'), await replicas('cart-canary')]).toEqual([1, 1]);
    // Only eu-1 was asked for.
    expect(await admin.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'shop', namespace: 'us' })).toBeUndefined();
    expect(() => targetFor('staging')).toThrow(/not in the environments repository/);
  });

  it('names the cluster and the problem when a kubeconfig context does not exist', () => {
    let err: unknown;
    try {
      kubeConfigFor({ name: 'eu-1', kubeconfig: kube.kubeconfigPath, context: 'prod', namespace: 'eu' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SlipwayError);
    expect((err as Error).message).toBe('cluster "eu-1" (environment.yaml target.kubernetes.clusters): context "prod" is not in the kubeconfig (it has: test)');
  });

  it('refuses inCluster outside a pod, and a kubeconfig path that does not exist', () => {
    expect(() => kubeConfigFor({ name: 'c', inCluster: true, namespace: 'x' }, { serviceAccountRoot: join(kube.dir, 'nowhere') })).toThrow(/not running in a pod/);
    expect(() => kubeConfigFor({ name: 'c', kubeconfig: join(kube.dir, 'missing.yaml'), namespace: 'x' })).toThrow(/does not exist/);
    const bad = join(kube.dir, 'bad.yaml');
    writeFileSync(bad, 'clusters: [');
    expect(() => kubeConfigFor({ name: 'c', kubeconfig: bad, namespace: 'x' })).toThrow(/is not valid/);
  });
});
