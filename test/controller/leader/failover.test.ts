/**
 * Two `slipway controller --leader-elect` processes (the real CLI, spawned) on one environments repository with
 * two Kubernetes environments, against a real kube-apiserver: each environment/cluster pair is reconciled by
 * exactly one replica; when the owner of a canary paused mid-rollout stops renewing its Lease (SIGSTOP: a hung
 * process), the other replica takes the shard over once the lease expired and finishes the rollout from the
 * records stored on the cluster, without shifting traffic again; the stopped replica, woken up, writes nothing.
 *
 * No kubelet: the test writes every Deployment's status itself (simulated readiness). Leases run with a short
 * test timing (--lease-timing 6000,4000,1000); the production defaults (15 s / 10 s / 2 s) are proven by
 * test/controller/targets/kubernetes/deploy.test.ts, which runs the CLI with deploy/deployment.yaml's args.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../../support/kube/apiserver.js';
import { ensureNamespace, simulateDeploymentStatus } from '../../support/kube/cluster.js';
import { EnvRepo } from '../../support/envrepo.js';
import { imageShelf, writeTrustingSlipwayFile, type ImageShelf } from '../../support/promotion-images.js';
import { shardOf } from '../../../controller/leader/index.js';
import { WRITER_ANNOTATION, controllerConfigMapName, createKubeClient, type KubeClient, type KubeObject } from '../../../controller/targets/kubernetes/index.js';
import type { Strategy } from '../../../schemas/index.js';
import { until } from '../../support/until.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const SYSTEM = 'slipway-system';
const TOKEN = 'failover-test-token';
const SHARDS = 2;
const STRATEGY: Strategy = { canary: { steps: [{ setWeight: 25 }, { pause: {} }, { setWeight: 75 }, { setWeight: 100 }] } };
const ENVIRONMENTS = ['staging', 'production'] as const;
const NAMESPACE = { staging: 'shop-staging', production: 'shop-production' } as const;
// Cluster names chosen so the two pairs fall on different shards: shardOf(environment, cluster, 2).
const STAGING_CLUSTER = 'eu-1';
const PRODUCTION_CLUSTER = ['eu-1', 'us-1', 'ap-1', 'sa-1', 'af-1'].find((c) => shardOf('production', c, SHARDS) !== shardOf('staging', STAGING_CLUSTER, SHARDS))!;
const CLUSTER = { staging: STAGING_CLUSTER, production: PRODUCTION_CLUSTER } as const;

interface Replica {
  name: string;
  child: ChildProcess;
  home: string;
  url: string;
  log: () => string;
}

interface Health {
  leaderElection: { identity: string; held: number[]; pairs: string[]; lease: { durationMs: number; renewDeadlineMs: number; retryPeriodMs: number } };
}
interface ServiceStatus {
  service: string;
  cluster?: string;
  phase: string;
  runningDigest?: string;
  rolloutDigest?: string;
  weights: { stable: number; canary: number };
  step: { index: number; count: number };
}
interface AuditEntry {
  id: string;
  action: string;
  data?: { weight?: number; step?: number };
  digest?: string;
}


/** The kube client has no request timeout of its own: a call the test awaits outside `until` gets one here. */
async function within<T>(what: string, work: Promise<T>, ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function api<T>(replica: Replica, path: string, method = 'GET'): Promise<{ status: number; body: T }> {
  const res = await fetch(`${replica.url}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: (await res.json()) as T };
}

describeWithKube('slipway controller --leader-elect, two replicas (real kube-apiserver, simulated readiness)', () => {
  let kube: KubeApiserver;
  let client: KubeClient;
  let shelf: ImageShelf;
  let repo: EnvRepo;
  let images: string;
  let v1: string;
  let v2: string;
  const replicas: Replica[] = [];
  let kubelet: NodeJS.Timeout | undefined;
  /** web-canary in staging as the simulated kubelet saw it: spec.replicas per generation. */
  const canaryHistory: { generation: number; replicas: number }[] = [];

  /** What the deployment controller and kubelets would do: every Deployment becomes ready as specified. */
  function startKubelet(): void {
    let busy = false;
    kubelet = setInterval(() => {
      if (busy) return;
      busy = true;
      // A round stuck on the apiserver must not stop the kubelet for good: after 20 s the next round goes on.
      void within('a simulated kubelet round', (async () => {
        for (const ns of Object.values(NAMESPACE)) {
          for (const d of await client.list<KubeObject & { metadata: { generation?: number; name: string }; spec: { replicas?: number }; status?: { observedGeneration?: number; readyReplicas?: number } }>('apps/v1', 'Deployment', ns)) {
            if (ns === NAMESPACE.staging && d.metadata.name === 'web-canary') {
              const seen = { generation: d.metadata.generation ?? 0, replicas: d.spec.replicas ?? 0 };
              const last = canaryHistory[canaryHistory.length - 1];
              if (!last || last.generation !== seen.generation) canaryHistory.push(seen);
            }
            if (d.status?.observedGeneration !== d.metadata.generation || (d.status?.readyReplicas ?? 0) !== (d.spec.replicas ?? 0)) {
              await simulateDeploymentStatus(client, ns, d.metadata.name).catch(() => undefined);
            }
          }
        }
      })(), 20_000)
        .catch(() => undefined)
        .finally(() => (busy = false));
    }, 250);
  }

  async function startReplica(name: string): Promise<Replica> {
    const home = mkdtempSync(join(tmpdir(), `slipway-replica-${name}-`));
    const args = ['controller', '--repo', repo.dir, '--port', '0', '--leader-elect', '--namespace', SYSTEM, '--shards', String(SHARDS), '--replicas', '2', '--identity', name];
    args.push('--lease-timing', '6000,4000,1000', '--schedule', '*/2 * * * * *');
    // native-preload: the Kubernetes client loads without tsx's hooks (the same code runs, with less CPU; see the file).
    const child = spawn(process.execPath, ['--import', join(ROOT, 'test/support/native-preload.mjs'), join(ROOT, 'bin/slipway.js'), ...args], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '', SLIPWAY_FROM_SOURCE: '1', SLIPWAY_HOME: home, KUBECONFIG: kube.kubeconfigPath, SLIPWAY_CONTROLLER_TOKEN: TOKEN, SLIPWAY_WEBHOOK_SECRET: 'x' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const endpoint = join(home, 'controller', 'endpoint');
    const url = await until(`replica ${name} to serve its API (log so far: ${log.slice(-400)})`, () => child.exitCode === null && existsSync(endpoint) && readFileSync(endpoint, 'utf8').trim(), 150_000);
    const replica: Replica = { name, child, home, url, log: () => log };
    replicas.push(replica);
    return replica;
  }

  beforeAll(async () => {
    // The signed images are made while etcd and the apiserver start (they need nothing from them).
    const starting = startKubeApiserver();
    try {
      images = mkdtempSync(join(tmpdir(), 'slipway-failover-images-'));
      shelf = imageShelf(images);
      v1 = await shelf.signed('web v1');
      v2 = await shelf.signed('web v2');
    } finally {
      // Even when signing failed: afterAll stops what started.
      kube = await starting;
    }
    client = createKubeClient(kube.kubeConfig());
    await Promise.all([SYSTEM, ...Object.values(NAMESPACE)].map((ns) => ensureNamespace(client, ns)));
    repo = EnvRepo.create({ environments: [...ENVIRONMENTS] });
    writeTrustingSlipwayFile(repo, shelf, [...ENVIRONMENTS]);
    for (const env of ENVIRONMENTS) {
      repo.write(
        `${env}/environment.yaml`,
        stringify({
          apiVersion: 'slipway.dev/v1',
          kind: 'Environment',
          metadata: { name: env },
          spec: { target: { type: 'kubernetes', kubernetes: { clusters: [{ name: CLUSTER[env], kubeconfig: kube.kubeconfigPath, namespace: NAMESPACE[env] }] } } },
        }),
      );
      repo.setService(env, 'web', { digest: v1, repository: shelf.repository, replicas: 4, strategy: STRATEGY });
    }
    repo.commit('web v1 in staging and production, on Kubernetes');
    startKubelet();
  }, KUBE_START_TIMEOUT_MS);

  afterAll(async () => {
    if (kubelet) clearInterval(kubelet);
    for (const r of replicas) {
      if (r.child.exitCode !== null || r.child.signalCode !== null) continue;
      const exited = new Promise((resolve) => r.child.once('exit', resolve));
      r.child.kill('SIGCONT');
      r.child.kill('SIGKILL');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5_000)))]);
      clearTimeout(timer);
    }
    for (const r of replicas) rmSync(r.home, { recursive: true, force: true });
    await kube?.stop();
    repo?.cleanup();
    if (images) rmSync(images, { recursive: true, force: true });
  });

  const health = async (r: Replica) => (await api<Health>(r, '/healthz')).body.leaderElection;
  const status = async (r: Replica, env: string) => (await api<ServiceStatus>(r, `/api/v1/environments/${env}/services/web`)).body;
  const pairOf = (env: (typeof ENVIRONMENTS)[number]) => `${env}/${CLUSTER[env]}`;

  let a: Replica;
  let b: Replica;
  let owner: Replica;
  let other: Replica;

  it('runs each environment/cluster pair on exactly one replica, and both replicas answer status for both', async () => {
    [a, b] = await Promise.all([startReplica('pod-a'), startReplica('pod-b')]);
    const split = await until('the two pairs to be split over the two replicas, one each', async () => {
      const [ha, hb] = await Promise.all([health(a), health(b)]);
      return ha.pairs.length === 1 && hb.pairs.length === 1 && { a: ha.pairs, b: hb.pairs };
    });
    expect([...split.a, ...split.b].sort()).toEqual(ENVIRONMENTS.map(pairOf).sort());

    for (const env of ENVIRONMENTS) {
      for (const r of [a, b]) {
        await until(`${env}/web on v1 as ${r.name} reports it`, async () => {
          const s = await status(r, env);
          return s.phase === 'Completed' && s.runningDigest === v1 && s;
        });
      }
      // The records of each pair are claimed by the replica that runs it.
      const cm = await within(`the ${env} records ConfigMap`, client.get<KubeObject>({ apiVersion: 'v1', kind: 'ConfigMap', name: controllerConfigMapName(env, CLUSTER[env]), namespace: SYSTEM }));
      expect(cm?.metadata?.annotations?.[WRITER_ANNOTATION]).toBe(split.a.includes(pairOf(env)) ? 'pod-a' : 'pod-b');
    }
    owner = split.a.includes(pairOf('staging')) ? a : b;
    other = owner === a ? b : a;
    // Both serve /metrics; each says which shard it holds.
    const stagingShard = shardOf('staging', CLUSTER.staging, SHARDS);
    const metrics = async (r: Replica) => {
      const res = await fetch(`${r.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(5_000) });
      return res.text();
    };
    expect(await metrics(owner)).toContain(`slipway_shard_held{shard="${stagingShard}"} 1`);
    expect(await metrics(other)).toContain(`slipway_shard_held{shard="${stagingShard}"} 0`);
    expect(await metrics(other)).toContain('slipway_pairs_running 1');
    // A replica that does not run staging refuses to act for it, and says who does.
    const refused = await api<{ error: { code: string; message: string } }>(other, '/api/v1/rollouts/staging/web/promote', 'POST');
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('NOT_LEADER');
    expect(refused.body.error.message).toContain(owner.name);
  }, 300_000);

  it('hands a canary paused mid-rollout to the other replica when its owner stops renewing, which finishes it from the stored step', async () => {
    repo.setService('staging', 'web', { digest: v2, repository: shelf.repository, replicas: 4, strategy: STRATEGY });
    repo.commit('web v2 in staging');
    const canary = async () =>
      (await within('the web-canary Deployment', client.get<KubeObject & { metadata: { generation: number }; spec: { replicas: number } }>({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web-canary', namespace: NAMESPACE.staging })))!;
    // The record is written ahead of the cluster: wait for both the paused state and 1 of 4 replicas on the canary.
    const paused = await until('the staging canary to pause at 25 % (1 of 4 replicas) on its owner', async () => {
      const s = await status(owner, 'staging');
      const live = await canary().catch(() => undefined);
      return s.phase === 'Paused' && s.weights.canary === 25 && s.rolloutDigest === v2 && live?.spec.replicas === 1 && live;
    });

    // The owner hangs: no more Lease renewals, no more anything.
    owner.child.kill('SIGSTOP');
    const taken = await until(`${other.name} to take staging over once ${owner.name}'s lease expired`, async () => (await health(other)).pairs.includes(pairOf('staging')) && (await health(other)));
    expect(taken.pairs.sort()).toEqual(ENVIRONMENTS.map(pairOf).sort());
    const lease = await within('the staging shard Lease', client.get<KubeObject & { spec: { holderIdentity: string; leaseTransitions: number } }>({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      name: `slipway-shard-${shardOf('staging', CLUSTER.staging, SHARDS)}`,
      namespace: SYSTEM,
    }));
    expect(lease?.spec.holderIdentity).toBe(other.name);
    expect(lease?.spec.leaseTransitions).toBeGreaterThanOrEqual(1);

    // Resumed from the stored step: still paused at 25 %, and the canary was not touched again.
    const resumed = await until('the new owner to report the stored paused step', async () => {
      const s = await status(other, 'staging');
      return s.phase === 'Paused' && s;
    });
    expect(resumed).toMatchObject({ weights: { canary: 25 }, rolloutDigest: v2 });
    expect((await canary()).metadata.generation).toBe(paused.metadata.generation);

    // The hung replica wakes up: it finds its lease gone and stops the pair without writing anything.
    owner.child.kill('SIGCONT');
    await until(`${owner.name} to give staging up after it woke`, async () => !(await health(owner)).pairs.includes(pairOf('staging')));
    const cm = await within('the staging records ConfigMap', client.get<KubeObject>({ apiVersion: 'v1', kind: 'ConfigMap', name: controllerConfigMapName('staging', CLUSTER.staging), namespace: SYSTEM }));
    expect(cm?.metadata?.annotations?.[WRITER_ANNOTATION]).toBe(other.name);
    expect((await canary()).metadata.generation).toBe(paused.metadata.generation);

    // A person promotes through the new owner; it steps on from 25 % to 75 %, 100 % and completes.
    // (A 503 is what any client retries: under load a lease round can come late and the pair pause for a moment.)
    let refusals: unknown[] = [];
    await until('the new owner to accept the promote', async () => {
      const promoted = await api<ServiceStatus | { error: unknown }>(other, '/api/v1/rollouts/staging/web/promote', 'POST');
      if (promoted.status !== 200) refusals = [...refusals, promoted.body];
      return promoted.status === 200;
    });
    if (refusals.length > 0) console.log(`promote was refused first: ${JSON.stringify(refusals)}\nOWNER ${owner.name}\n${owner.log()}\nOTHER ${other.name}\n${other.log()}`);
    await until('the staging rollout of v2 to complete on the new owner', async () => {
      const s = await status(other, 'staging');
      return s.phase === 'Completed' && s.runningDigest === v2 && s;
    });

    // Traffic moved 25 → 75 → 100 once each: the canary's replicas only ever grew, and the audit trail (kept on
    // the cluster, read through either replica) holds every step once.
    const steps = canaryHistory.map((h) => h.replicas);
    expect(steps).toContain(1);
    expect([...steps].sort((x, y) => x - y)).toEqual(steps);
    const history = (await api<{ history: AuditEntry[] }>(owner, '/api/v1/environments/staging/services/web')).body.history;
    const ids = history.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    const shifts = history.filter((e) => e.action === 'TrafficShifted' && e.digest === v2).map((e) => e.data?.weight);
    expect({ shifts, steps }).toEqual({ shifts: [25, 75, 100], steps: expect.any(Array) });
    expect(history.filter((e) => e.action === 'Paused' && e.digest === v2)).toHaveLength(1);
    // Production, on the other shard, was never disturbed.
    expect(await status(other, 'production')).toMatchObject({ phase: 'Completed', runningDigest: v1 });
  }, 300_000);
});
