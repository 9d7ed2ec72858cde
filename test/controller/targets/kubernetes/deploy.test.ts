/**
 * The install manifests in deploy/ on a real kube-apiserver: they apply, and the RBAC they grant is enough for
 * everything the controller does and nothing more. The controller's ServiceAccount is impersonated by a token
 * user with the same name and groups, so the apiserver's RBAC authorizer judges the real rules.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { EnvRepo } from '../../../support/envrepo.js';
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../../../support/kube/apiserver.js';
import { ensureNamespace } from '../../../support/kube/cluster.js';
import {
  builderJobFor,
  builderJobStatus,
  createClusterRecordStore,
  createConfigMapStateStore,
  createEnvironmentTarget,
  readAllPairRecords,
  createKubeClient,
  createKubernetesTarget,
  loadBuilderTemplate,
  startBuilderJob,
  type KubeClient,
  type KubeObject,
} from '../../../../controller/targets/kubernetes/index.js';
import { createShardManager, shardOf } from '../../../../controller/leader/index.js';
import { until as waitUntil } from '../../../support/until.js';

const DEPLOY = join(process.cwd(), 'deploy');
const SA_USER = 'system:serviceaccount:slipway-system:slipway-controller';
const DIGEST = `sha256:${'e5'.repeat(32)}`;
const COMMIT = 'c0ffee'.padEnd(40, '0');

function manifests(file: string): KubeObject[] {
  return parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => !!o);
}

const until = <T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 120_000) => waitUntil(what, probe, timeoutMs, 250);

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

    it('can hold the shard Leases and keep each pair’s records and audit trail in its own namespace, and delete neither', async () => {
      const clock = { now: () => new Date() };
      const shards = createShardManager({ client: controller, namespace: 'slipway-system', identity: 'pod-a', clock, shards: 2, replicas: 1, leasePrefix: 'rbac-shard' });
      expect(await shards.step()).toEqual([0, 1]);
      expect(await shards.step()).toEqual([0, 1]);
      const records = createClusterRecordStore<{ environment: string; service: string }, { environment: string }>({
        client: controller,
        namespace: 'slipway-system',
        scope: 'rbac',
        writer: 'pod-a',
        auditSegmentBytes: 200,
      });
      await records.claim('staging', shards.tokenOf(0));
      await records.saveService({ environment: 'staging', service: 'web' });
      for (const id of ['a', 'b', 'c']) {
        await records.record({ id, at: clock.now().toISOString(), environment: 'staging', service: 'web', action: 'TrafficShifted', actor: 'slipway-controller', message: `entry ${id} `.repeat(10) });
      }
      expect((await records.list({ environment: 'staging' })).map((e) => e.id)).toEqual(['a', 'b', 'c']);
      expect((await readAllPairRecords(controller, 'slipway-system')).map((r) => r.pair)).toEqual([{ environment: 'staging', cluster: 'rbac' }]);
      const store = createConfigMapStateStore<{ phase: string }>({ client: controller, namespace: 'slipway-system' });
      const v = await store.save({ environment: 'staging', service: 'web' }, { phase: 'Idle' }, undefined);
      await store.save({ environment: 'staging', service: 'web' }, { phase: 'Completed' }, v);
      await shards.release();
      expect(await statusOf(controller.delete({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name: 'rbac-shard-0', namespace: 'slipway-system' }))).toBe(403);
      expect(await statusOf(controller.delete({ apiVersion: 'v1', kind: 'ConfigMap', name: 'slipway-controller-staging.rbac', namespace: 'slipway-system' }))).toBe(403);
      expect(await statusOf(controller.list('coordination.k8s.io/v1', 'Lease', 'shop-staging'))).toBe(403);
    });

    it('runs `slipway controller` with the Deployment’s own args: it takes shard Leases (production timing 15 s / 10 s / 2 s) and writes the pair’s records', async () => {
      const deployment = manifests('deployment.yaml')[0] as KubeObject & { spec: { replicas: number; template: { spec: { containers: { args: string[]; env: { name: string; value?: string }[] }[] } } } };
      expect(deployment.spec.replicas).toBe(2);
      const container = deployment.spec.template.spec.containers[0]!;
      const podName = 'slipway-controller-7d9c-abcde';
      const home = mkdtempSync(join(tmpdir(), 'slipway-deployed-'));
      // A cluster name whose pair lands on one of the two shards a replica takes at once (its fair share of 4 over 2).
      const cluster = ['here', 'there', 'near', 'far', 'east', 'west'].find((c) => shardOf('staging', c, 4) < 2)!;
      const repo = EnvRepo.create({ environments: ['staging'] });
      const saConfig = join(home, 'sa.kubeconfig');
      writeFileSync(saConfig, kube.kubeConfigFor(SA_USER).exportConfig());
      repo.write(
        'staging/environment.yaml',
        stringify({ apiVersion: 'slipway.dev/v1', kind: 'Environment', metadata: { name: 'staging' }, spec: { target: { type: 'kubernetes', kubernetes: { clusters: [{ name: cluster, kubeconfig: saConfig, namespace: 'shop-staging' }] } } } }),
      );
      repo.setService('staging', 'web', { digest: DIGEST, repository: `oci:${join(home, 'images')}` });
      repo.commit('staging on Kubernetes; a digest nobody signed');
      const env: Record<string, string> = { POD_NAME: podName, POD_NAMESPACE: 'slipway-system', SLIPWAY_REPO_URL: repo.dir };
      const args = container.args.map((a) => a.replace(/\$\((\w+)\)/g, (_, name: string) => env[name] ?? container.env.find((e) => e.name === name)?.value ?? ''));
      // Loopback and a free port here; everything else exactly as the Deployment says.
      args[args.indexOf('--host') + 1] = '127.0.0.1';
      args[args.indexOf('--port') + 1] = '0';
      expect(args).toEqual(expect.arrayContaining(['--leader-elect', '--identity', podName, '--namespace', 'slipway-system', '--shards', '4']));
      expect(args).not.toContain('--lease-timing');
      const child = spawn(process.execPath, [join(process.cwd(), 'bin/slipway.js'), ...args], {
        env: { ...process.env, NODE_OPTIONS: '', SLIPWAY_FROM_SOURCE: '1', SLIPWAY_HOME: home, KUBECONFIG: saConfig, SLIPWAY_CONTROLLER_TOKEN: 'deploy-test', SLIPWAY_WEBHOOK_SECRET: 'x' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let log = '';
      child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        const endpoint = join(home, 'controller', 'endpoint');
        const url = await until(`the controller to serve its API (log: ${log.slice(-300)})`, () => child.exitCode === null && existsSync(endpoint) && readFileSync(endpoint, 'utf8').trim());
        const health = await until('the controller to run the staging pair', async () => {
          const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
          const body = (await res.json()) as { leaderElection: { held: number[]; pairs: string[]; lease: unknown } };
          return body.leaderElection.pairs.includes(`staging/${cluster}`) && body.leaderElection;
        });
        expect(health.lease).toEqual({ durationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
        expect(health.held).toEqual([0, 1]);
        const lease = await admin.get<KubeObject & { spec: { holderIdentity: string; leaseDurationSeconds: number } }>({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name: `slipway-shard-${shardOf('staging', cluster, 4)}`, namespace: 'slipway-system' });
        expect(lease?.spec).toMatchObject({ holderIdentity: podName, leaseDurationSeconds: 15 });
        const records = await until('the pair’s records to show the refused digest', async () => {
          const all = await readAllPairRecords<{ environment: string; service: string; gate?: { code: string } }, { environment: string }>(admin, 'slipway-system');
          const mine = all.find((r) => r.pair.environment === 'staging' && r.pair.cluster === cluster);
          return mine?.services[0]?.gate?.code === 'NO_ATTESTATION' && mine;
        });
        expect(records.writer).toBe(podName);
        expect(log).not.toMatch(/forbidden|403/i);
      } finally {
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 15_000)))]);
        clearTimeout(timer);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        repo.cleanup();
        rmSync(home, { recursive: true, force: true });
      }
      // Stopped gracefully, it gave its Leases up for the other replica to take at once.
      const released = await admin.get<KubeObject & { spec: { holderIdentity?: string } }>({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', name: 'slipway-shard-0', namespace: 'slipway-system' });
      expect(released?.spec.holderIdentity ?? '').toBe('');
    }, 240_000);

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
