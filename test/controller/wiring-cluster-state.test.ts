/**
 * The wired controller with `--state cluster` and no leader election (createLocalController({ cluster })): one
 * replica owns every environment/cluster pair, keeps each pair's records and audit trail in a ConfigMap on a real
 * kube-apiserver, and a new process (a replaced pod, another name) resumes a paused canary from them alone.
 * Hand edits put back by the drift watcher land in the pair's audit trail on the cluster. Readiness is simulated:
 * the test writes every Deployment's status as the deployment controller would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../support/kube/apiserver.js';
import { ensureNamespace, simulateDeploymentStatus } from '../support/kube/cluster.js';
import { EnvRepo } from '../support/envrepo.js';
import { imageShelf, writeTrustingSlipwayFile, type ImageShelf } from '../support/promotion-images.js';
import { createLocalController, type LocalController } from '../../controller/wiring.js';
import { WRITER_ANNOTATION, controllerConfigMapName, createKubeClient, type KubeClient, type KubeObject } from '../../controller/targets/kubernetes/index.js';
import type { Strategy } from '../../schemas/index.js';
import { until } from '../support/until.js';

const NS = 'shop-staging';
const SYSTEM = 'slipway-system';
const STRATEGY: Strategy = { canary: { steps: [{ setWeight: 50 }, { pause: {} }, { setWeight: 100 }] } };


describeWithKube('the wired controller with its state on the cluster (real kube-apiserver, simulated readiness)', () => {
  let kube: KubeApiserver;
  let client: KubeClient;
  let shelf: ImageShelf;
  let repo: EnvRepo;
  let home: string;
  let running: LocalController | undefined;
  let kubelet: NodeJS.Timeout | undefined;
  let v1: string;
  let v2: string;

  const start = async (identity: string): Promise<LocalController> => {
    const c = await createLocalController({
      repo: repo.dir,
      home,
      stateDir: join(home, `unused-${identity}`),
      schedule: '*/1 * * * * *',
      cluster: { leaderElect: false, namespace: SYSTEM, identity, shards: 1, replicas: 1, kubeConfig: kube.kubeConfig() },
    });
    await c.controller.start();
    return c;
  };

  beforeAll(async () => {
    kube = await startKubeApiserver();
    client = createKubeClient(kube.kubeConfig());
    for (const ns of [SYSTEM, NS]) await ensureNamespace(client, ns);
    home = mkdtempSync(join(tmpdir(), 'slipway-wiring-cluster-'));
    shelf = imageShelf(join(home, 'images'));
    v1 = await shelf.signed('web v1');
    v2 = await shelf.signed('web v2');
    repo = EnvRepo.create({ environments: ['staging'] });
    writeTrustingSlipwayFile(repo, shelf, ['staging']);
    repo.write(
      'staging/environment.yaml',
      stringify({
        apiVersion: 'slipway.dev/v1',
        kind: 'Environment',
        metadata: { name: 'staging' },
        spec: { target: { type: 'kubernetes', kubernetes: { clusters: [{ name: 'test', kubeconfig: kube.kubeconfigPath, namespace: NS }] } } },
      }),
    );
    repo.setService('staging', 'web', { digest: v1, repository: shelf.repository, replicas: 2, strategy: STRATEGY });
    repo.commit('staging runs web v1 on Kubernetes');
    let busy = false;
    kubelet = setInterval(() => {
      if (busy) return;
      busy = true;
      void (async () => {
        for (const d of await client.list<KubeObject & { metadata: { name: string; generation?: number }; spec: { replicas?: number }; status?: { observedGeneration?: number; readyReplicas?: number } }>('apps/v1', 'Deployment', NS)) {
          if (d.status?.observedGeneration !== d.metadata.generation || (d.status?.readyReplicas ?? 0) !== (d.spec.replicas ?? 0)) await simulateDeploymentStatus(client, NS, d.metadata.name).catch(() => undefined);
        }
      })()
        .catch(() => undefined)
        .finally(() => (busy = false));
    }, 250);
  }, KUBE_START_TIMEOUT_MS);

  afterAll(async () => {
    if (kubelet) clearInterval(kubelet);
    await running?.close();
    await kube?.stop();
    repo?.cleanup();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  const deployment = async (name: string) => (await client.get<KubeObject & { spec: { replicas: number } }>({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: NS }))!;

  it('rolls out from records it keeps in the pair’s ConfigMap, claimed under its name', async () => {
    running = await start('solo-1');
    await until('web v1 to complete', () => {
      const s = running!.controller.service('staging', 'web');
      return s?.phase === 'Completed' && s.runningDigest === v1 && s;
    });
    expect(running.controller.service('staging', 'web')?.cluster).toBe('test');
    // Memory leads the ConfigMap by one write: wait for the record to land.
    const cm = await until('the Completed record in the pair’s ConfigMap', async () => {
      const live = await client.get<KubeObject & { data?: Record<string, string> }>({ apiVersion: 'v1', kind: 'ConfigMap', name: controllerConfigMapName('staging', 'test'), namespace: SYSTEM });
      const rec = live?.data?.['service.web.json'];
      return rec !== undefined && (JSON.parse(rec) as { state: { phase: string } }).state.phase === 'Completed' && live;
    });
    expect(cm.metadata?.annotations?.[WRITER_ANNOTATION]).toBe('solo-1');
    expect(JSON.parse(cm.data!['service.web.json']!)).toMatchObject({ state: { phase: 'Completed', stable: { digest: v1 } } });
    expect(() => running!.controller.reconciler).toThrow(/runs on shards/);
    await expect(running.controller.once()).rejects.toThrow(/a single pass \(--once\) runs on file state only/);
  }, 200_000);

  it('puts back a hand edit and records it in the pair’s audit trail on the cluster', async () => {
    const person = createKubeClient(kube.kubeConfig(), { fieldManager: 'kubectl-edit' });
    const live = await deployment('web');
    live.spec.replicas = 9;
    await person.replace(live);
    const found = await running!.drift.checkOnce();
    expect(found.map((r) => `${r.object} ${r.field}`)).toEqual(['Deployment/web spec.replicas']);
    expect((await deployment('web')).spec.replicas).toBe(2);
    const audit = await running!.controller.audit.list({ environment: 'staging', service: 'web' });
    // The running sync loop may notice the same edit a moment before the watcher: each repair is one entry.
    const repaired = audit.filter((e) => e.action === 'drift-repaired');
    expect(repaired.length).toBeGreaterThanOrEqual(1);
    for (const e of repaired) expect(e.data).toEqual({ cluster: 'test', object: 'Deployment/web', field: 'spec.replicas' });
    // Read back from the ConfigMap, not from memory.
    const cm = await client.get<KubeObject & { data: Record<string, string> }>({ apiVersion: 'v1', kind: 'ConfigMap', name: controllerConfigMapName('staging', 'test'), namespace: SYSTEM });
    expect(cm!.data['audit.jsonl']).toContain('"action":"drift-repaired"');
  });

  it('resumes a paused canary in a new process from the cluster alone, and finishes it with every step recorded once', async () => {
    repo.setService('staging', 'web', { digest: v2, repository: shelf.repository, replicas: 2, strategy: STRATEGY });
    repo.commit('web v2');
    await running!.controller.trigger('api');
    await until('the canary to pause at 50 %', async () => {
      const s = running!.controller.service('staging', 'web');
      return s?.phase === 'Paused' && s.weights.canary === 50 && (await deployment('web-canary').catch(() => undefined))?.spec.replicas === 1 && s;
    });
    await running!.close();

    // The replacement pod: another name, nothing in memory, nothing on disk.
    running = await start('solo-2');
    const resumed = await until('the new process to load the paused canary', () => {
      const s = running!.controller.service('staging', 'web');
      return s?.phase === 'Paused' && s;
    });
    expect(resumed).toMatchObject({ weights: { canary: 50 }, rolloutDigest: v2 });
    await running.controller.promote('staging', 'web', 'alice');
    await until('web v2 to complete', () => {
      const s = running!.controller.service('staging', 'web');
      return s?.phase === 'Completed' && s.runningDigest === v2 && s;
    });
    const history = await running.controller.history('staging', 'web');
    expect(history.filter((e) => e.action === 'TrafficShifted' && e.digest === v2).map((e) => (e.data as { weight?: number }).weight)).toEqual([50, 100]);
    expect(new Set(history.map((e) => e.id)).size).toBe(history.length);
    expect(history.some((e) => e.action === 'PromoteRequested' && e.actor === 'alice')).toBe(true);
  }, 200_000);
});
