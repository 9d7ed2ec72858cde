/**
 * The controller's records and audit trail in ConfigMaps (createClusterRecordStore) on a real kube-apiserver:
 * fenced writes (the replica that claimed a pair last is its only writer), the audit trail appended by
 * compare-and-swap without losing or duplicating an entry across a takeover, and archived when it grows.
 */
import { KUBE_START_TIMEOUT_MS, describeWithKube, startKubeApiserver, type KubeApiserver } from '../../../support/kube/apiserver.js';
import { ensureNamespace } from '../../../support/kube/cluster.js';
import {
  WRITER_ANNOTATION,
  controllerConfigMapName,
  createClusterRecordStore,
  createKubeClient,
  readAllPairRecords,
  type KubeClient,
  type KubeObject,
} from '../../../../controller/targets/kubernetes/index.js';
import type { AuditEntry } from '../../../../controller/reconcile/index.js';
import { isSlipwayError } from '../../../../lib/errors.js';

const NS = 'slipway-system';
type Rec = { environment: string; service: string; step: number };
type Env = { environment: string; lastAppliedCommit?: string };

const entry = (id: string, environment = 'staging'): AuditEntry => ({ id, at: '2026-11-23T10:00:00.000Z', environment, service: 'web', action: 'TrafficShifted', actor: 'slipway-controller', message: id });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return isSlipwayError(err) ? err.code : String(err);
  }
}

describeWithKube('controller records in ConfigMaps (real kube-apiserver)', () => {
  let kube: KubeApiserver;
  let client: KubeClient;
  beforeAll(async () => {
    kube = await startKubeApiserver();
    client = createKubeClient(kube.kubeConfig());
    await ensureNamespace(client, NS);
  }, KUBE_START_TIMEOUT_MS);
  afterAll(async () => {
    await kube?.stop();
  });

  const store = (writer: string | undefined, scope = 'eu-1', extra: { auditSegmentBytes?: number; onRequest?: () => void } = {}) =>
    createClusterRecordStore<Rec, Env>({
      client: extra.onRequest ? createKubeClient(kube.kubeConfig(), { onRequest: extra.onRequest }) : client,
      namespace: NS,
      scope,
      ...(writer ? { writer } : {}),
      ...(extra.auditSegmentBytes ? { auditSegmentBytes: extra.auditSegmentBytes } : {}),
    });

  describe('when another replica claims a pair', () => {
    it('refuses every later write of the replica that held it (FENCED) and keeps the new writer’s records', async () => {
      const a = store('pod-a');
      expect(await a.claim('staging')).toBeUndefined();
      await a.saveService({ environment: 'staging', service: 'web', step: 1 });
      await a.record(entry('step-1'));

      const b = store('pod-b');
      expect(await b.claim('staging')).toBe('pod-a');
      // The new writer resumes from what the old one stored.
      expect(await b.loadService('staging', 'web')).toEqual({ environment: 'staging', service: 'web', step: 1 });
      await b.saveService({ environment: 'staging', service: 'web', step: 2 });

      // pod-a has not noticed it lost the shard: its cached resourceVersion is stale, its writes must not land.
      expect(await codeOf(a.saveService({ environment: 'staging', service: 'web', step: 99 }))).toBe('FENCED');
      expect(await codeOf(a.record(entry('from-the-old-writer')))).toBe('FENCED');
      expect(await codeOf(a.saveEnvironment({ environment: 'staging', lastAppliedCommit: 'x' }))).toBe('FENCED');
      expect(await b.loadService('staging', 'web')).toEqual({ environment: 'staging', service: 'web', step: 2 });
      expect((await b.list({ environment: 'staging' })).map((e) => e.id)).toEqual(['step-1']);

      const cm = await client.get<KubeObject>({ apiVersion: 'v1', kind: 'ConfigMap', name: controllerConfigMapName('staging', 'eu-1'), namespace: NS });
      expect(cm?.metadata?.annotations?.[WRITER_ANNOTATION]).toBe('pod-b');
    });

    it('refuses a late claim made under an older term of the shard Lease than the stored one', async () => {
      const lease = { lease: 'slipway-shard-1', uid: 'lease-uid-1' };
      const old = store('pod-old', 'me-1');
      const fresh = store('pod-new', 'me-1');
      await old.claim('staging', { ...lease, transitions: 3 });
      await fresh.claim('staging', { ...lease, transitions: 4 });
      // pod-old was paused while it took the shard; its claim lands after pod-new's.
      expect(await codeOf(old.claim('staging', { ...lease, transitions: 3 }))).toBe('FENCED');
      expect(await codeOf(old.saveService({ environment: 'staging', service: 'web', step: 7 }))).toBe('FENCED');
      await fresh.saveService({ environment: 'staging', service: 'web', step: 8 });
      // A Lease deleted and made again (new uid) starts a new series of terms.
      expect(await old.claim('staging', { lease: 'slipway-shard-1', uid: 'lease-uid-2', transitions: 0 })).toBe('pod-new');
    });

    it('refuses the writes of a revoked store at once, without asking the API server', async () => {
      let requests = 0;
      const c = store('pod-c', 'us-1', { onRequest: () => void requests++ });
      await c.claim('staging');
      await c.saveService({ environment: 'staging', service: 'web', step: 1 });
      c.revoke('lost shard 1');
      const before = requests;
      expect(await codeOf(c.saveService({ environment: 'staging', service: 'web', step: 2 }))).toBe('FENCED');
      expect(await codeOf(c.record(entry('late')))).toBe('FENCED');
      expect(requests).toBe(before);
    });
  });

  describe('the audit trail', () => {
    it('records an entry replayed by the replica that took over once, in order, and reads it back from any replica', async () => {
      const a = store('pod-a', 'ap-1');
      await a.claim('production');
      await a.recordMany([entry('e1', 'production'), entry('e2', 'production')]);
      const b = store('pod-b', 'ap-1');
      await b.claim('production');
      // A takeover replays the last transition's events: e2 again, then new ones.
      await b.recordMany([entry('e2', 'production'), entry('e3', 'production')]);
      await b.record(entry('e3', 'production'));
      const reader = store(undefined, 'ap-1');
      expect((await reader.list({ environment: 'production', service: 'web' })).map((e) => e.id)).toEqual(['e1', 'e2', 'e3']);
    });

    it('moves a trail that outgrows its segment into immutable archives and loses or repeats nothing', async () => {
      const w = store('pod-a', 'sa-1', { auditSegmentBytes: 1024 });
      await w.claim('staging');
      const ids = Array.from({ length: 40 }, (_, i) => `entry-${String(i).padStart(2, '0')}`);
      for (const id of ids) await w.record(entry(id));
      const archives = await client.list<KubeObject>('v1', 'ConfigMap', NS, 'slipway.dev/state=audit,slipway.dev/scope=sa-1');
      expect(archives.length).toBeGreaterThan(1);
      expect(archives.every((m) => (m as { immutable?: boolean }).immutable === true)).toBe(true);

      // A replica that takes over later skips ids already archived.
      const next = store('pod-b', 'sa-1', { auditSegmentBytes: 1024 });
      await next.claim('staging');
      await next.recordMany([entry('entry-00'), entry('entry-39'), entry('entry-40')]);
      expect((await next.list({ environment: 'staging' })).map((e) => e.id)).toEqual([...ids, 'entry-40']);
    });
  });

  it('lists every pair’s records in one call, with the replica that writes them', async () => {
    const all = await readAllPairRecords<Rec, Env>(client, NS);
    const staging = all.find((r) => r.pair.environment === 'staging' && r.pair.cluster === 'eu-1');
    expect(staging).toMatchObject({ writer: 'pod-b', services: [{ service: 'web', step: 2 }] });
    expect(all.map((r) => `${r.pair.environment}/${r.pair.cluster}`).sort()).toEqual(['production/ap-1', 'staging/eu-1', 'staging/me-1', 'staging/sa-1', 'staging/us-1']);
  });
});
