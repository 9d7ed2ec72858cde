/**
 * The real rollout core driving the Kubernetes target on a real kube-apiserver, with the environments repo a
 * real git repository. Each round is a fresh "controller process": it loads rollout state from the cluster's
 * ConfigMap, observes the cluster, decides, applies, and saves. Readiness is simulated (no kubelet): after
 * each round the test writes every Deployment's status as the deployment controller would.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../../../support/kube/apiserver.js';
import { ensureNamespace, simulateDeploymentStatus } from '../../../support/kube/cluster.js';
import {
  createConfigMapStateStore,
  createKubeClient,
  createKubernetesTarget,
  type KubeClient,
  type KubeObject,
} from '../../../../controller/targets/kubernetes/index.js';
import { decide, initialState, rolloutSpecFrom, type Intent, type RolloutState } from '../../../../controller/rollout/index.js';
import type { ServiceConfig } from '../../../../schemas/index.js';

const OLD = `sha256:${'0a'.repeat(32)}`;
const NEW = `sha256:${'0b'.repeat(32)}`;
const FILE = 'staging/services/web.yaml';

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=Slipway Test', '-c', 'user.email=test@slipway.dev', ...args], { cwd, encoding: 'utf8' }).trim();
}

function serviceYaml(digest: string): string {
  const doc: ServiceConfig = {
    apiVersion: 'slipway.dev/v1',
    kind: 'Service',
    metadata: { name: 'web' },
    spec: {
      image: { repository: 'registry.example/shop/web', digest },
      replicas: 4,
      port: 8080,
      strategy: { canary: { steps: [{ setWeight: 25 }, { analysis: { interval: '1m' } }, { setWeight: 50 }, { analysis: { interval: '1m' } }] } },
    },
  };
  return stringify(doc);
}

describeWithKube('a canary on Kubernetes (real kube-apiserver, simulated readiness)', () => {
  let kube: KubeApiserver;
  let client: KubeClient;
  let repo: string;
  const ns = 'shop-staging';
  const ref = { environment: 'staging', service: 'web' };

  beforeAll(async () => {
    kube = await startKubeApiserver();
    client = createKubeClient(kube.kubeConfig());
    await ensureNamespace(client, ns);
    repo = mkdtempSync(join(tmpdir(), 'slipway-envrepo-'));
    git(repo, 'init', '-q', '-b', 'main');
    mkdirSync(join(repo, 'staging/services'), { recursive: true });
    writeFileSync(join(repo, FILE), serviceYaml(OLD));
    git(repo, 'add', '.');
    git(repo, 'commit', '-q', '-m', 'web: first release');
  }, KUBE_START_TIMEOUT_MS);
  afterAll(async () => {
    await kube?.stop();
    if (repo) rmSync(repo, { recursive: true, force: true });
  });

  let now = Date.parse('2026-11-23T10:00:00.000Z');
  const verdicts: ('pass' | 'fail')[] = [];
  const history: string[] = [];

  /** One controller round, as a freshly started process would run it. */
  async function round(): Promise<{ state: RolloutState; intents: Intent[] }> {
    const target = createKubernetesTarget({ client, namespace: ns });
    const store = createConfigMapStateStore<RolloutState>({ client, namespace: ns });
    const spec = rolloutSpecFrom(parse(readFileSync(join(repo, FILE), 'utf8')) as ServiceConfig);
    const loaded = await store.load(ref);
    let state = loaded?.state ?? initialState(ref.environment, ref.service);
    let version = loaded?.version;
    let verdict: { id: string; outcome: 'pass' | 'fail'; summary: string } | undefined;
    const all: Intent[] = [];
    // Decide until the core has nothing more to do right now (verdicts feed straight back in).
    for (let pass = 0; pass < 5; pass++) {
      const observation = await target.observe(ref);
      const decision = decide(state, { target: observation, ...(verdict ? { verdict } : {}) }, new Date(now), spec);
      verdict = undefined;
      state = decision.state;
      for (const intent of decision.intents) {
        all.push(intent);
        switch (intent.type) {
          case 'ensureTrack':
            await target.ensureTrack(ref, intent.track, intent.spec);
            break;
          case 'setWeight':
            await target.setWeight(ref, intent.weight);
            break;
          case 'promote':
            await target.promote(ref);
            break;
          case 'removeTrack':
            await target.removeTrack(ref, intent.track);
            break;
          case 'runAnalysis': {
            const outcome = verdicts.shift() ?? 'pass';
            verdict = { id: intent.id, outcome, summary: `error rate ${outcome === 'fail' ? '9.1% > 1%' : '0.1%'}` };
            break;
          }
          case 'revert': {
            const introducing = git(repo, 'log', '--format=%H', '-n1', `-S${intent.badDigest}`, '--', FILE);
            git(repo, 'revert', '--no-edit', introducing);
            git(repo, 'commit', '-q', '--amend', '-m', `Revert ${introducing.slice(0, 12)}: ${intent.reason}\n\n${intent.summary}`);
            break;
          }
          case 'emitEvent':
            history.push(intent.event.kind);
            break;
        }
      }
      version = await store.save(ref, state, version);
      if (!verdict && decision.intents.every((i) => i.type === 'emitEvent')) break;
    }
    // The deployment controller and kubelets would bring every Deployment to its spec.
    for (const name of ['web', 'web-canary']) {
      if (await client.get({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: ns })) await simulateDeploymentStatus(client, ns, name);
    }
    now += 61_000;
    return { state, intents: all };
  }

  const replicas = async () => {
    const get = async (name: string) => ((await client.get({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: ns })) as (KubeObject & { spec: { replicas: number } }) | undefined)?.spec.replicas;
    return { stable: await get('web'), canary: await get('web-canary') };
  };

  it('runs the first release straight to stable', async () => {
    for (let i = 0; i < 3; i++) await round();
    const state = (await createConfigMapStateStore<RolloutState>({ client, namespace: ns }).load(ref))!.state;
    expect(state.phase).toBe('Completed');
    expect(await replicas()).toEqual({ stable: 4, canary: undefined });
  });

  it('steps the canary by replicas, and on a breach sends traffic back to stable, reverts the commit and converges back', async () => {
    writeFileSync(join(repo, FILE), serviceYaml(NEW));
    git(repo, 'commit', '-q', '-am', 'web: bump to 0b0b');
    const bump = git(repo, 'rev-parse', 'HEAD');

    await round(); // canary created at weight 0, then made ready
    await round(); // ready: first step, 25%
    expect(await replicas()).toEqual({ stable: 3, canary: 1 });

    verdicts.push('fail', 'fail');
    let last = await round();
    for (let i = 0; i < 4 && last.state.phase !== 'RolledBack'; i++) last = await round();
    expect(last.state.phase).toBe('RolledBack');
    // Traffic went back to stable at once: the canary is gone, stable at full size.
    expect(await replicas()).toEqual({ stable: 4, canary: undefined });

    // The revert commit is in git, naming the reverted commit; the file holds the old digest again.
    const subject = git(repo, 'log', '-1', '--format=%s');
    expect(subject).toMatch(new RegExp(`^Revert ${bump.slice(0, 12)}: `));
    expect(git(repo, 'show', 'HEAD:' + FILE)).toContain(OLD);

    // The controller picks up the revert (a known-good digest: no canary) and the cluster converges on it.
    for (let i = 0; i < 3; i++) last = await round();
    expect(last.state.phase).toBe('Completed');
    expect(last.state.stable?.digest).toBe(OLD);
    const observed = await createKubernetesTarget({ client, namespace: ns }).observe(ref);
    expect(observed.stable).toEqual({ digest: OLD, replicas: 4, readyReplicas: 4 });
    expect(observed.canary).toBeUndefined();
    expect(history).toEqual(expect.arrayContaining(['RolloutStarted', 'TrafficShifted', 'AnalysisVerdict', 'RolledBack']));
  });

  it('refuses a state write from a replica that read an older state', async () => {
    const store = createConfigMapStateStore<RolloutState>({ client, namespace: ns });
    const a = (await store.load(ref))!;
    const b = (await store.load(ref))!;
    await store.save(ref, { ...a.state, message: 'replica a' }, a.version);
    await expect(store.save(ref, { ...b.state, message: 'replica b' }, b.version)).rejects.toMatchObject({ code: 'STATE_CONFLICT' });
    expect((await store.load(ref))!.state.message).toBe('replica a');
  });
});
