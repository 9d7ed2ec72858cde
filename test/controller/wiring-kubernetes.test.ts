/**
 * The wired controller (`createLocalController`, every real port) on an environments repo with one local and
 * one Kubernetes environment: the Kubernetes one is rolled out onto a real kube-apiserver through the
 * kubeconfig its environment.yaml names, by digest, after the real provenance verifier accepted the signed
 * image, and hand edits are put back by the drift watcher. Readiness is simulated: the test writes the Deployment's status as the deployment controller would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../support/kube/apiserver.js';
import { ensureNamespace, simulateDeploymentStatus } from '../support/kube/cluster.js';
import { EnvRepo } from '../support/envrepo.js';
import { imageShelf, type ImageShelf } from '../support/promotion-images.js';
import { DEFAULT_BUILDER_ID } from '../../lib/provenance/index.js';
import { createLocalController, type LocalController } from '../../controller/wiring.js';
import { createKubeClient, type KubeClient, type KubeObject } from '../../controller/targets/kubernetes/index.js';

const NS = 'shop-staging';

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
    repo.write('keys/ci.pub', shelf.publicKeyPem);
    repo.write(
      'slipway.yaml',
      stringify({
        apiVersion: 'slipway.dev/v1',
        kind: 'Slipway',
        metadata: { name: 'shop' },
        spec: {
          environments: ['dev', 'staging'],
          trust: { keys: [{ name: 'ci', publicKey: 'keys/ci.pub' }], builders: [DEFAULT_BUILDER_ID], sources: [{ repo: 'https://git.example/shop/*' }] },
        },
      }),
    );
    repo.write(
      'staging/environment.yaml',
      stringify({
        apiVersion: 'slipway.dev/v1',
        kind: 'Environment',
        metadata: { name: 'staging' },
        spec: { target: { type: 'kubernetes', kubernetes: { clusters: [{ name: 'test', kubeconfig: kube.kubeconfigPath, namespace: NS }] } } },
      }),
    );
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
});
