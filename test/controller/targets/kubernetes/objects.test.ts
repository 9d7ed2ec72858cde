/** The pure parts of the Kubernetes target: manifests, replica split, readiness from status, drift comparison. */
import {
  deploymentFor,
  deploymentReadiness,
  differences,
  digestLabel,
  httpRouteFor,
  replicaSplit,
  servicesFor,
  trackStatusOf,
  type KubeObject,
  type ServiceContext,
} from '../../../../controller/targets/kubernetes/index.js';
import type { TrackSpec } from '../../../../controller/targets/types.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const ctx: ServiceContext = { environment: 'staging', service: 'web', namespace: 'shop', progressDeadlineSeconds: 600 };
const spec: TrackSpec = { repository: 'r.example/web', digest: DIGEST, replicas: 4, port: 8080, healthPath: '/healthz', env: { B: '2', A: '1' } };

describe('replica split by canary weight (no traffic router)', () => {
  it.each([
    [0, 4, 0],
    [10, 4, 1],
    [25, 3, 1],
    [50, 2, 2],
    [90, 1, 4],
    [100, 0, 4],
  ])('at %i%% runs %i stable and %i canary of 4', (weight, stable, canary) => {
    expect(replicaSplit(4, weight)).toEqual({ stable, canary });
  });
});

describe('manifests', () => {
  it('labels a digest with the longest legal label value (63 characters)', () => {
    expect(digestLabel(DIGEST)).toHaveLength(63);
    expect(DIGEST.slice(7)).toContain(digestLabel(DIGEST));
  });
  it('writes env sorted by name, so the same spec always gives the same object', () => {
    const d = deploymentFor(ctx, 'stable', spec, 4) as KubeObject & { spec: { template: { spec: { containers: { env: { name: string }[] }[] } } } };
    expect(d.spec.template.spec.containers[0].env.map((e) => e.name)).toEqual(['A', 'B']);
    expect(deploymentFor(ctx, 'stable', { ...spec, env: { A: '1', B: '2' } }, 4)).toEqual(d);
  });
  it('refuses a tag or a short digest', () => {
    expect(() => deploymentFor(ctx, 'stable', { ...spec, digest: 'sha256:abc' }, 1)).toThrow(/full sha256 digest/);
  });
  it('adds a preview Service in blue-green only, selecting the inactive track', () => {
    expect(servicesFor(ctx, 8080, { mode: 'replicas', canaryWeight: 0 }).map((s) => s.metadata.name)).toEqual(['web', 'web-stable', 'web-canary']);
    const bg = servicesFor(ctx, 8080, { mode: 'blueGreen', canaryWeight: 100 });
    expect(bg.map((s) => [s.metadata.name, (s.spec as { selector: Record<string, string> }).selector['slipway.dev/track']])).toEqual([
      ['web', 'canary'],
      ['web-stable', 'stable'],
      ['web-canary', 'canary'],
      ['web-preview', 'stable'],
    ]);
  });
  it('keeps an HTTPRoute on the canary while a promotion rolls stable', () => {
    const route = httpRouteFor({ ...ctx, gateway: { name: 'gw' } }, 8080, { mode: 'gateway', canaryWeight: 30, promoting: true }) as KubeObject & {
      spec: { rules: { backendRefs: { weight: number }[] }[] };
    };
    expect(route.spec.rules[0].backendRefs.map((b) => b.weight)).toEqual([0, 100]);
  });
});

describe('readiness from Deployment status', () => {
  const deployment = (status: Record<string, unknown>, generation = 2, replicas = 4): KubeObject =>
    ({ ...deploymentFor(ctx, 'canary', spec, replicas), metadata: { ...deploymentFor(ctx, 'canary', spec, replicas).metadata, generation }, status }) as KubeObject;

  it('is not ready while the controller has not observed the latest generation', () => {
    expect(deploymentReadiness(deployment({ observedGeneration: 1, replicas: 4, updatedReplicas: 4, availableReplicas: 4 })).complete).toBe(false);
  });
  it('is not ready while old replicas remain', () => {
    expect(deploymentReadiness(deployment({ observedGeneration: 2, replicas: 5, updatedReplicas: 4, availableReplicas: 4 })).complete).toBe(false);
  });
  it('is ready when every replica is updated and available', () => {
    expect(trackStatusOf(deployment({ observedGeneration: 2, replicas: 4, updatedReplicas: 4, availableReplicas: 4 }))).toEqual({ digest: DIGEST, replicas: 4, readyReplicas: 4 });
  });
  it('counts a track complete at its step size as ready at its declared size (replica ratio)', () => {
    expect(trackStatusOf(deployment({ observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1 }, 2, 1)).readyReplicas).toBe(4);
    expect(trackStatusOf(deployment({ observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 1 }, 2, 2)).readyReplicas).toBe(2);
  });
  it('fails with the reason from the Progressing condition when the deadline passed', () => {
    const status = trackStatusOf(
      deployment({ observedGeneration: 2, conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'ReplicaSet "web-abc" has timed out progressing.' }] }),
    );
    expect(status.failed).toBe('ProgressDeadlineExceeded: ReplicaSet "web-abc" has timed out progressing.');
  });
  it('fails when pods cannot be created (ReplicaFailure)', () => {
    const status = trackStatusOf(deployment({ observedGeneration: 2, conditions: [{ type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: 'exceeded quota' }] }));
    expect(status.failed).toBe('FailedCreate: exceeded quota');
  });
});

describe('drift comparison', () => {
  it('names the paths where live differs from what was applied, ignoring fields the server added', () => {
    const desired = { spec: { replicas: 4, template: { spec: { containers: [{ image: 'a@sha256:1', name: 'web' }] } } } };
    const live = { spec: { replicas: 9, revisionHistoryLimit: 10, template: { spec: { containers: [{ image: 'a:hotfix', name: 'web', imagePullPolicy: 'IfNotPresent' }] } } } };
    expect(differences(desired, live)).toEqual(['spec.replicas', 'spec.template.spec.containers[0].image']);
    expect(differences(desired, { ...live, spec: { ...live.spec, replicas: 4, template: desired.spec.template } })).toEqual([]);
  });
});
