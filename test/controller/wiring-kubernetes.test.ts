/**
 * The wired controller (`createLocalController`, every real port) on an environments repo with one local and
 * one Kubernetes environment: the Kubernetes one is rolled out onto a real kube-apiserver through the
 * kubeconfig its environment.yaml names, by digest, after the real provenance verifier accepted the signed
 * image, and hand edits are put back by the drift watcher. Analysis goes to the real Prometheus for a Kubernetes
 * environment that names analysis.prometheus, and to the request log otherwise. Readiness is simulated: the test writes the Deployment's status as the deployment controller would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../support/kube/apiserver.js';
import { ensureNamespace, simulateDeploymentStatus } from '../support/kube/cluster.js';
import { EnvRepo } from '../support/envrepo.js';
import { imageShelf, writeTrustingSlipwayFile, type ImageShelf } from '../support/promotion-images.js';
import { analysisPerEnvironment, createLocalController, type LocalController } from '../../controller/wiring.js';
import { createKubeClient, type EnvironmentView, type KubeClient, type KubeObject } from '../../controller/targets/kubernetes/index.js';
import { createLocalTarget, type LocalTarget } from '../../controller/targets/local/index.js';
import { createAnalysisProvider, type AnalysisContext } from '../../controller/analysis/index.js';
import { openImageStore } from '../../lib/oci/index.js';
import type { AnalysisSettings, EnvironmentConfig, Slos } from '../../schemas/index.js';
import { startPrometheus, type TestPrometheus } from '../support/prometheus.js';

const NS = 'shop-staging';

function kubernetesEnvironment(kubeconfig: string, namespace: string): string {
  return stringify({
    apiVersion: 'slipway.dev/v1',
    kind: 'Environment',
    metadata: { name: 'staging' },
    spec: { target: { type: 'kubernetes', kubernetes: { clusters: [{ name: 'test', kubeconfig, namespace }] } } },
  });
}

describeWithKube('the wired controller', () => {
  let kube: KubeApiserver;
  let client: KubeClient;
  let shelf: ImageShelf;
  let repo: EnvRepo;
  let home: string;
  let running: LocalController | undefined;
  let digest: string;
  let now = new Date('2026-11-23T10:00:00.000Z');

  beforeAll(async () => {
    kube = await startKubeApiserver();
    client = createKubeClient(kube.kubeConfig());
    await ensureNamespace(client, NS);
    home = mkdtempSync(join(tmpdir(), 'slipway-wiring-kube-'));
    shelf = imageShelf(join(home, 'images'));
    digest = await shelf.signed('web v1');
    repo = EnvRepo.create({ environments: ['dev', 'staging'] });
    writeTrustingSlipwayFile(repo, shelf, ['dev', 'staging']);
    repo.write('staging/environment.yaml', kubernetesEnvironment(kube.kubeconfigPath, NS));
    repo.setService('staging', 'web', { digest, repository: shelf.repository, replicas: 2 });
    repo.commit('staging runs on Kubernetes');
  }, KUBE_START_TIMEOUT_MS);

  afterAll(async () => {
    await running?.close();
    await kube?.stop();
    repo?.cleanup();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  const deployment = async (name: string) =>
    (await client.get({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: NS })) as
      | (KubeObject & { spec: { replicas: number; template: { spec: { containers: { image: string }[] } } } })
      | undefined;

  describe('when an environment names target.type kubernetes', () => {
    it('rolls its service out onto the cluster as a Deployment of the image by digest', async () => {
      running = await createLocalController({ repo: repo.dir, stateDir: join(home, 'state'), home, clock: { now: () => now } });
      const report = await running.controller.once();
      expect(report.problems).toBeUndefined();
      expect(report.error).toBeUndefined();

      const web = await deployment('web');
      expect(web?.spec.template.spec.containers[0]?.image).toBe(`${shelf.repository}@${digest}`);
      expect(web?.spec.replicas).toBe(2);
      expect(running.controller.service('staging', 'web')?.gate).toBeUndefined();

      for (let i = 0; i < 6 && running.controller.service('staging', 'web')?.phase !== 'Completed'; i++) {
        await simulateDeploymentStatus(client, NS, 'web');
        now = new Date(now.getTime() + 5_000);
        await running.controller.reconciler.runDue();
      }
      expect(running.controller.service('staging', 'web')).toMatchObject({ phase: 'Completed', runningDigest: digest });
    });

    it('puts back a hand edit to its Deployment when the drift watcher looks, and records it in the audit log', async () => {
      expect(await running!.drift.checkOnce()).toEqual([]);
      // What `kubectl scale` / `kubectl edit` does: an update under another field manager.
      const person = createKubeClient(kube.kubeConfig(), { fieldManager: 'kubectl-edit' });
      const live = (await deployment('web'))!;
      live.spec.replicas = 7;
      await person.replace(live);

      const found = await running!.drift.checkOnce();
      expect(found.map((r) => `${r.environment}/${r.service} ${r.object} ${r.field}`)).toEqual(['staging/web Deployment/web spec.replicas']);
      expect((await deployment('web'))?.spec.replicas).toBe(2);
      const audit = await running!.controller.audit.list({ environment: 'staging', service: 'web' });
      expect(audit.filter((e) => e.action === 'drift-repaired')).toEqual([
        expect.objectContaining({ data: { cluster: 'test', object: 'Deployment/web', field: 'spec.replicas' } }),
      ]);
    });
  });

  describe('when an environment turns to Kubernetes after a controller started with local environments only', () => {
    it('loads the Kubernetes target on first use and rolls the service out onto the cluster', async () => {
      const later = 'shop-later';
      await ensureNamespace(client, later);
      const localOnly = EnvRepo.create({ environments: ['dev', 'staging'] });
      let controller: LocalController | undefined;
      try {
        writeTrustingSlipwayFile(localOnly, shelf, ['dev', 'staging']);
        localOnly.commit('trust the CI key');
        controller = await createLocalController({ repo: localOnly.dir, stateDir: join(home, 'state-later'), home, clock: { now: () => now } });
        expect((await controller.controller.once()).error).toBeUndefined();

        localOnly.write('staging/environment.yaml', kubernetesEnvironment(kube.kubeconfigPath, later));
        localOnly.setService('staging', 'web', { digest, repository: shelf.repository, replicas: 1 });
        localOnly.commit('staging moves to Kubernetes');
        const report = await controller.controller.once();
        expect(report.problems).toBeUndefined();
        expect(report.error).toBeUndefined();
        const web = (await client.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: later })) as
          | (KubeObject & { spec: { template: { spec: { containers: { image: string }[] } } } })
          | undefined;
        expect(web?.spec.template.spec.containers[0]?.image).toBe(`${shelf.repository}@${digest}`);
      } finally {
        await controller?.close();
        localOnly.cleanup();
      }
    });
  });
});

describe('analysis of the wired controller', () => {
  let prometheus: TestPrometheus;
  let local: LocalTarget;
  let dir: string;
  const view = (name: string, target: EnvironmentConfig['spec']['target'], analysis?: EnvironmentConfig['spec']['analysis']): EnvironmentView => ({
    name,
    config: { apiVersion: 'slipway.dev/v1', kind: 'Environment', metadata: { name }, spec: { target, ...(analysis ? { analysis } : {}) } } as EnvironmentConfig,
    services: {},
  });
  let environments: Record<string, EnvironmentView>;
  const context = (environment: string, settings: AnalysisSettings = {}): AnalysisContext => ({
    environment,
    service: 'web',
    slos: { maxErrorRate: 0.01 } satisfies Slos,
    settings,
    start: new Date(Date.now() - 60_000),
    end: new Date(),
  });

  beforeAll(async () => {
    prometheus = await startPrometheus({ targets: [] });
    dir = mkdtempSync(join(tmpdir(), 'slipway-wiring-analysis-'));
    local = createLocalTarget({ openStore: (repository) => openImageStore(repository), home: dir });
    const cluster = { type: 'kubernetes' as const, kubernetes: { clusters: [{ name: 'test', namespace: 'shop' }] } };
    environments = {
      dev: view('dev', { type: 'local' }),
      // Constant queries: Prometheus itself answers 500 requests and no errors for either track.
      staging: view('staging', cluster, { prometheus: { url: prometheus.url, queries: { requests: 'vector(500)', errors: 'vector(0)' } } }),
      production: view('production', cluster),
    };
  });
  afterAll(async () => {
    await local?.close();
    await prometheus?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const analysis = () => analysisPerEnvironment((name) => environments[name], createAnalysisProvider({ requestLog: local.requestLog }), createAnalysisProvider({}));

  it('asks Prometheus for a Kubernetes environment that names analysis.prometheus', async () => {
    const verdict = await analysis().analyze(context('staging'));
    expect(verdict.outcome).toBe('pass');
    expect(verdict.slos[0]?.numbers).toMatchObject({ canaryRequests: 500, baselineRequests: 500 });
  });

  it('reads the request log for a local environment, a Kubernetes environment without Prometheus, and one that asks for builtin', async () => {
    const onlyTheLog = /too few requests to judge: canary had 0/;
    const prometheusSettings = { prometheus: { url: prometheus.url, queries: { requests: 'vector(500)', errors: 'vector(0)' } } };
    expect((await analysis().analyze(context('dev', prometheusSettings))).summary).toMatch(onlyTheLog);
    expect((await analysis().analyze(context('production'))).summary).toMatch(onlyTheLog);
    expect((await analysis().analyze(context('staging', { provider: 'builtin' }))).summary).toMatch(onlyTheLog);
  });
});
