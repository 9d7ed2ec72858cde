/**
 * The real controller Reconciler (sync → gates → rollout core → target) on the Kubernetes target and a real
 * kube-apiserver, with its records in ConfigMaps, so a controller started afresh (a restarted pod, or the
 * replica that takes over the shard) resumes from the cluster alone. Readiness is simulated: between
 * controller passes the test writes every Deployment's status as the deployment controller would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../../../support/kube/apiserver.js';
import { ensureNamespace, simulateDeploymentStatus } from '../../../support/kube/cluster.js';
import { EnvRepo, digestOf } from '../../../support/envrepo.js';
import { GitCliRevert } from '../../../support/git-revert.js';
import { ScriptedAnalysis, ScriptedVerifier, utcFixedWindows } from '../../reconcile/harness.js';
import { Reconciler } from '../../../../controller/reconcile/index.js';
import { GitEnvironmentSource } from '../../../../controller/sync/index.js';
import { FileAuditLog, type StateStore } from '../../../../controller/state/index.js';
import {
  createClusterRecordStore,
  createKubeClient,
  createKubernetesTarget,
  type KubeClient,
  type KubeObject,
} from '../../../../controller/targets/kubernetes/index.js';
import type { Strategy } from '../../../../schemas/index.js';

const A = digestOf('a');
const B = digestOf('b');
const STRATEGY: Strategy = { canary: { steps: [{ setWeight: 25 }, { pause: {} }, { analysis: { interval: '1m' } }, { setWeight: 75 }, { setWeight: 100 }] } };
const NS = 'shop-staging';
const SYSTEM = 'slipway-system';

describeWithKube('the controller on Kubernetes (real kube-apiserver, simulated readiness)', () => {
  let kube: KubeApiserver;
  let client: KubeClient;
  let repo: EnvRepo;
  let auditDir: string;
  let now = new Date('2026-11-23T10:00:00.000Z');
  const verifier = new ScriptedVerifier();
  const analysis = new ScriptedAnalysis();

  /** A controller process as a pod would start it: everything it knows comes from git and the cluster. */
  function startController(): Reconciler {
    return new Reconciler({
      // The cluster store has StateStore's methods; StateStore is a class with private members, hence the cast.
      store: createClusterRecordStore({ client, namespace: SYSTEM }) as unknown as StateStore,
      ports: {
        source: new GitEnvironmentSource({ location: repo.dir }),
        targetFor: () => createKubernetesTarget({ client, namespace: NS }),
        verifier,
        freeze: utcFixedWindows,
        analysis,
        rollback: new GitCliRevert(repo.dir),
        audit: new FileAuditLog(join(auditDir, 'audit.jsonl')),
        clock: { now: () => now },
      },
    });
  }
  const tick = (ms: number) => (now = new Date(now.getTime() + ms));

  /** What the deployment controller would do, then let the controller look again. */
  async function settle(controller: Reconciler, rounds = 4): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      for (const name of ['web', 'web-canary']) {
        if (await client.get({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: NS })) await simulateDeploymentStatus(client, NS, name);
      }
      tick(5_000);
      await controller.runDue();
    }
  }
  const replicas = async () => {
    const get = async (name: string) =>
      ((await client.get({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: NS })) as (KubeObject & { spec: { replicas: number } }) | undefined)?.spec.replicas;
    return { stable: await get('web'), canary: await get('web-canary') };
  };

  beforeAll(async () => {
    kube = await startKubeApiserver();
    client = createKubeClient(kube.kubeConfig());
    await ensureNamespace(client, NS);
    await ensureNamespace(client, SYSTEM);
    repo = EnvRepo.create({ services: { web: { digest: A, strategy: STRATEGY, replicas: 4 } } });
    auditDir = mkdtempSync(join(tmpdir(), 'slipway-audit-'));
  }, KUBE_START_TIMEOUT_MS);
  afterAll(async () => {
    await kube?.stop();
    repo?.cleanup();
    if (auditDir) rmSync(auditDir, { recursive: true, force: true });
  });

  it('deploys the first release and records it on the cluster', async () => {
    const controller = startController();
    expect((await controller.sync('startup')).problems).toBeUndefined();
    await settle(controller);
    expect(controller.record('staging', 'web')?.state.phase).toBe('Completed');
    expect(await replicas()).toEqual({ stable: 4, canary: undefined });
    const fresh = startController();
    await fresh.open();
    expect(fresh.record('staging', 'web')?.state.stable?.digest).toBe(A);
  });

  it('a controller restarted during a paused canary resumes it from the cluster, and a breach reverts and converges back', async () => {
    repo.setService('staging', 'web', { digest: B, strategy: STRATEGY, replicas: 4 });
    const bad = repo.commit('web to B');
    let controller = startController();
    await controller.sync('webhook');
    await settle(controller);
    expect(controller.record('staging', 'web')?.state.phase).toBe('Paused');
    expect(await replicas()).toEqual({ stable: 3, canary: 1 });

    // The pod is replaced: a new process with nothing in memory.
    controller = startController();
    await controller.open();
    expect(controller.record('staging', 'web')?.state.phase).toBe('Paused');
    await controller.promote('staging', 'web', 'alice');
    expect(controller.record('staging', 'web')?.state.phase).toBe('Analyzing');

    analysis.outcomes.push('fail', 'fail');
    for (let i = 0; i < 3 && controller.record('staging', 'web')?.state.phase !== 'RolledBack'; i++) {
      tick(60_000);
      await controller.runDue();
    }
    expect(controller.record('staging', 'web')?.state.phase).toBe('RolledBack');
    expect(await replicas()).toEqual({ stable: 4, canary: undefined });
    expect(repo.git('log', '-1', '--format=%B')).toContain(`Slipway-Reverts: ${bad}`);

    await controller.sync('webhook');
    await settle(controller);
    expect(controller.record('staging', 'web')?.state.phase).toBe('Completed');
    const observed = await createKubernetesTarget({ client, namespace: NS }).observe({ environment: 'staging', service: 'web' });
    expect(observed.stable).toEqual({ digest: A, replicas: 4, readyReplicas: 4 });
    expect(observed.canary).toBeUndefined();
  });
});
