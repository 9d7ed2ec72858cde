/** API calls per change do not grow with the namespace: counted at the client against a real kube-apiserver. */
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../../../support/kube/apiserver.js';
import { ensureNamespace } from '../../../support/kube/cluster.js';
import { createKubeClient, createKubernetesTarget, type ApiRequest, type KubernetesTarget } from '../../../../controller/targets/kubernetes/index.js';
import type { TrackSpec } from '../../../../controller/targets/types.js';

const digest = (i: number) => `sha256:${i.toString(16).padStart(64, '0')}`;
const spec = (i: number, d = digest(i)): TrackSpec => ({ repository: `r.example/svc-${i}`, digest: d, replicas: 2, port: 8080, healthPath: '/healthz', env: {} });

describeWithKube('API calls of one changed service (real kube-apiserver)', () => {
  let kube: KubeApiserver;
  let calls: ApiRequest[] = [];
  let target: KubernetesTarget;
  beforeAll(async () => {
    kube = await startKubeApiserver();
    const client = createKubeClient(kube.kubeConfig(), { onRequest: (r) => calls.push(r) });
    await ensureNamespace(client, 'many');
    target = createKubernetesTarget({ client, namespace: 'many' });
  }, KUBE_START_TIMEOUT_MS);
  afterAll(async () => {
    await kube?.stop();
  });

  async function populate(from: number, to: number) {
    for (let i = from; i < to; i++) await target.ensureTrack({ environment: 'e', service: `svc-${i}` }, 'stable', spec(i));
  }
  async function callsForOneChange(i: number, version: number): Promise<string[]> {
    calls = [];
    await target.ensureTrack({ environment: 'e', service: `svc-${i}` }, 'stable', spec(i, digest(10_000 + version)));
    return calls.map((c) => `${c.method} ${new URL(c.url).pathname}`);
  }

  it('makes the same calls for one changed service with 5 or 30 services in the namespace, all about that service', async () => {
    await populate(0, 5);
    const few = await callsForOneChange(2, 1);
    await populate(5, 30);
    const many = await callsForOneChange(2, 2);
    expect(many).toEqual(few);
    expect(many.length).toBeLessThanOrEqual(8);
    expect(many.every((path) => /\/svc-2(-canary|-stable|-preview)?$/.test(path))).toBe(true);
    expect(many.filter((p) => p.startsWith('GET') && !/\/svc-2/.test(p))).toEqual([]);
  });
});
