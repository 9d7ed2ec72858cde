/**
 * The install manifests in deploy/ on a real kube-apiserver: they apply, and the RBAC they grant is enough for
 * everything the controller does and nothing more. The controller's ServiceAccount is impersonated by a token
 * user with the same name and groups, so the apiserver's RBAC authorizer judges the real rules.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../../../support/kube/apiserver.js';
import { ensureNamespace } from '../../../support/kube/cluster.js';
import {
  builderJobFor,
  builderJobStatus,
  createConfigMapStateStore,
  createEnvironmentTarget,
  createKubeClient,
  createKubernetesTarget,
  loadBuilderTemplate,
  startBuilderJob,
  type KubeClient,
  type KubeObject,
} from '../../../../controller/targets/kubernetes/index.js';
import { createLeaderElector } from '../../../../controller/leader/index.js';

const DEPLOY = join(process.cwd(), 'deploy');
const SA_USER = 'system:serviceaccount:slipway-system:slipway-controller';
const DIGEST = `sha256:${'e5'.repeat(32)}`;
const COMMIT = 'c0ffee'.padEnd(40, '0');

function manifests(file: string): KubeObject[] {
  return parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => !!o);
}

async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    return ((err as { data?: { status?: number } }).data?.status ?? (err as { code?: number }).code ?? 0) as number;
  }
}

describe('the builder Job template', () => {
  const template = loadBuilderTemplate(join(DEPLOY, 'builder-job.yaml'));

  it('fills in only the run: name, labels, args and env; the sandbox stays as the template has it', () => {
    const job = builderJobFor(template, { id: 'web@c0ffee', service: 'web', repository: 'https://git.example/shop/web.git', commit: COMMIT });
    expect(job.metadata.name).toBe('slipway-build-web-c0ffee');
    const pod = job.spec.template.spec as unknown as { serviceAccountName: string; automountServiceAccountToken: boolean; securityContext: { runAsNonRoot: boolean } };
    expect(pod.serviceAccountName).toBe('slipway-builder');
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    const container = job.spec.template.spec.containers[0];
    expect(container.args).toEqual(['build', '--repo', 'https://git.example/shop/web.git', '--commit', COMMIT]);
    expect(container.env?.find((e) => e.name === 'SLIPWAY_BUILD_COMMIT')?.value).toBe(COMMIT);
    expect((job.spec as unknown as { backoffLimit: number }).backoffLimit).toBe(0);
  });

  it('refuses a commit that is not a full object id', () => {
    expect(() => builderJobFor(template, { id: 'x', service: 'web', repository: 'r', commit: 'main' })).toThrow(/full hex object id/);
  });
});

describeWithKube('installing Slipway from deploy/ (real kube-apiserver)', () => {
  let kube: KubeApiserver;
  let admin: KubeClient;
  let controller: KubeClient;

  beforeAll(async () => {
    kube = await startKubeApiserver({ users: { [SA_USER]: ['system:serviceaccounts', 'system:serviceaccounts:slipway-system'] } });
    admin = createKubeClient(kube.kubeConfig());
    controller = createKubeClient(kube.kubeConfigFor(SA_USER));
    for (const file of ['namespace.yaml', 'serviceaccount.yaml', 'rbac.yaml', 'deployment.yaml', 'service.yaml']) {
      for (const o of manifests(file)) await admin.apply(o);
    }
    await ensureNamespace(admin, 'shop-staging');
    await ensureNamespace(admin, 'payments');
    for (const o of manifests('target-namespace.yaml')) await admin.apply(o);
    for (const o of manifests('secrets.example.yaml')) await admin.apply(o);
    await admin.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'payments-db', namespace: 'slipway-system' }, stringData: { password: 'x' } } as never);
  }, KUBE_START_TIMEOUT_MS);
  afterAll(async () => {
    await kube?.stop();
  });

  it('applies every manifest: the controller Deployment probes /healthz and runs as non-root', async () => {
    const d = (await admin.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'slipway-controller', namespace: 'slipway-system' })) as KubeObject & {
      spec: { template: { spec: { securityContext: { runAsNonRoot: boolean }; containers: { livenessProbe: { httpGet: { path: string } }; readinessProbe: { httpGet: { path: string } } }[] } } };
    };
    const c = d.spec.template.spec.containers[0];
    expect([c.livenessProbe.httpGet.path, c.readinessProbe.httpGet.path]).toEqual(['/healthz', '/healthz']);
    expect(d.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
    expect(await admin.get({ apiVersion: 'v1', kind: 'Service', name: 'slipway', namespace: 'slipway-system' })).toBeDefined();
  });

  describe('as the controller ServiceAccount', () => {
    it('can deploy a service into a namespace bound with target-namespace.yaml', async () => {
      const target = createKubernetesTarget({ client: controller, namespace: 'shop-staging' });
      const ref = { environment: 'staging', service: 'web' };
      await target.ensureTrack(ref, 'stable', { repository: 'r.example/web', digest: DIGEST, replicas: 2, port: 8080, healthPath: '/healthz', env: {} });
      await target.ensureTrack(ref, 'canary', { repository: 'r.example/web', digest: DIGEST, replicas: 2, port: 8080, healthPath: '/healthz', env: {} });
      await target.setWeight(ref, 50);
      expect((await target.observe(ref)).canaryWeight).toBe(50);
      await target.removeService(ref);
    });

    it('can hold the leader Lease and keep rollout state in its own namespace', async () => {
      const clock = { now: () => new Date() };
      const elector = createLeaderElector({ client: controller, namespace: 'slipway-system', name: 'slipway-controller', identity: 'pod-a', clock });
      expect(await elector.step()).toBe(true);
      const store = createConfigMapStateStore<{ phase: string }>({ client: controller, namespace: 'slipway-system' });
      const v = await store.save({ environment: 'staging', service: 'web' }, { phase: 'Idle' }, undefined);
      await store.save({ environment: 'staging', service: 'web' }, { phase: 'Completed' }, v);
    });

    it('can start a builder Job from the template and read its outcome (simulated by the test)', async () => {
      const run = { id: 'web@c0ffee', service: 'web', repository: 'https://git.example/shop/web.git', commit: COMMIT };
      const job = await startBuilderJob(controller, loadBuilderTemplate(join(DEPLOY, 'builder-job.yaml')), run);
      // Idempotent: the same run again returns the same Job.
      expect((await startBuilderJob(controller, loadBuilderTemplate(join(DEPLOY, 'builder-job.yaml')), run)).metadata.uid).toBe(job.metadata.uid);
      expect(await builderJobStatus(controller, 'slipway-system', job.metadata.name)).toEqual({ name: job.metadata.name, phase: 'pending' });
      const now = new Date().toISOString();
      await admin.replaceStatus(
        { ...job, status: { failed: 1, conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', lastProbeTime: now, lastTransitionTime: now }] } } as never,
        'jobs',
      );
      expect(await builderJobStatus(controller, 'slipway-system', job.metadata.name)).toEqual({
        name: job.metadata.name,
        phase: 'failed',
        reason: 'BackoffLimitExceeded: Job has reached the specified backoff limit',
      });
    });

    it('runs in a pod with the in-cluster config: the mounted service account token and CA', async () => {
      const root = mkdtempSync(join(tmpdir(), 'slipway-pod-'));
      const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
      try {
        const dir = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'token'), kube.kubeConfigFor(SA_USER).getCurrentUser()!.token!);
        writeFileSync(join(dir, 'ca.crt'), kube.caPem);
        writeFileSync(join(dir, 'namespace'), 'slipway-system');
        const url = new URL(kube.server);
        process.env.KUBERNETES_SERVICE_HOST = url.hostname;
        process.env.KUBERNETES_SERVICE_PORT = url.port;
        const target = createEnvironmentTarget({ clusters: [{ name: 'here', inCluster: true, namespace: 'shop-staging' }], serviceAccountRoot: root });
        const ref = { environment: 'staging', service: 'cart' };
        await target.ensureTrack(ref, 'stable', { repository: 'r.example/cart', digest: DIGEST, replicas: 1, port: 8080, healthPath: '/healthz', env: {} });
        const d = await admin.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'cart', namespace: 'shop-staging' });
        expect((d?.metadata?.managedFields ?? []).map((m) => m.manager)).toEqual(['slipway']);
        await target.removeService(ref);
      } finally {
        process.env.KUBERNETES_SERVICE_HOST = saved.host;
        process.env.KUBERNETES_SERVICE_PORT = saved.port;
        if (saved.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
        if (saved.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
        rmSync(root, { recursive: true, force: true });
      }
    });

    it('can read the git and trust Secrets it is given, and no other Secret', async () => {
      expect(await statusOf(controller.get({ apiVersion: 'v1', kind: 'Secret', name: 'slipway-git', namespace: 'slipway-system' }))).toBe(200);
      expect(await statusOf(controller.get({ apiVersion: 'v1', kind: 'Secret', name: 'payments-db', namespace: 'slipway-system' }))).toBe(403);
      expect(await statusOf(controller.list('v1', 'Secret', 'shop-staging'))).toBe(403);
    });

    it('cannot touch a namespace nobody bound it to, nor anything cluster-wide', async () => {
      const target = createKubernetesTarget({ client: controller, namespace: 'payments' });
      expect(await statusOf(target.ensureTrack({ environment: 'prod', service: 'api' }, 'stable', { repository: 'r/api', digest: DIGEST, replicas: 1, port: 80, healthPath: '/', env: {} }))).toBe(403);
      expect(await statusOf(controller.delete({ apiVersion: 'v1', kind: 'Namespace', name: 'payments' }))).toBe(403);
      expect(await statusOf(controller.apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'x' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' }, subjects: [] } as never))).toBe(403);
      expect(await statusOf(controller.list('v1', 'Pod', 'shop-staging'))).toBe(403);
    });
  });
});
