/**
 * The controller's records (what controller/state's StateStore keeps in files) kept on the cluster instead, so
 * a controller pod that restarts, or the replica that takes over a shard, resumes where the last one stopped:
 * one ConfigMap per environment, `slipway-controller-<environment>` (`…-<environment>.<scope>` for a store
 * scoped to one cluster), key `environment.json` for the environment record, `service.<name>.json` per service
 * and `audit.jsonl` for the audit trail. Every write is a compare-and-swap on the ConfigMap's resourceVersion.
 *
 * Fencing (`writer`): the replica that takes over a shard first claims the ConfigMap (annotation
 * `slipway.dev/writer`, written by CAS). From then on every write of any other writer is refused (FENCED) instead
 * of landing, so a replica that lost its Lease but has not noticed yet can never overwrite the new owner's
 * records or audit trail. `revoke()` refuses every later write of this store at once, without a round trip.
 *
 * Audit trail: entries are appended to `audit.jsonl` in the same ConfigMap as the records (one writer, one CAS),
 * skipping ids already recorded, so a transition replayed by the replica that took over is recorded once. When
 * it outgrows `auditSegmentBytes`, the lines move to an immutable archive ConfigMap (`…-<n>.audit`, label
 * `slipway.dev/state: audit`) and the live key starts empty; `list` reads archives then the live key.
 */
import { SlipwayError } from '../../../lib/errors.js';
import type { AuditEntry } from '../../reconcile/index.js';
import { isApiStatus, type KubeClient } from './client.js';
import { LABELS, MANAGER_VALUE } from './objects.js';

const NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const STATE_LABEL = 'slipway.dev/state';
const SCOPE_LABEL = 'slipway.dev/scope';
export const WRITER_ANNOTATION = 'slipway.dev/writer';
const WRITER_SINCE_ANNOTATION = 'slipway.dev/writer-since';
export const WRITER_TOKEN_ANNOTATION = 'slipway.dev/writer-token';

/** The shard Lease term a claim is made under (controller/leader's FencingToken). */
export interface WriterToken {
  lease: string;
  uid: string;
  transitions: number;
}

function parseToken(raw: string | undefined): WriterToken | undefined {
  if (!raw) return undefined;
  try {
    const t = JSON.parse(raw) as WriterToken;
    return typeof t.lease === 'string' && typeof t.uid === 'string' && typeof t.transitions === 'number' ? t : undefined;
  } catch {
    return undefined;
  }
}
const ARCHIVE_ANNOTATION = 'slipway.dev/audit-archive';
const AUDIT_KEY = 'audit.jsonl';
const ENVIRONMENT_KEY = 'environment.json';
/** Well under the 1 MiB a ConfigMap may hold, leaving the rest to the records. */
const DEFAULT_AUDIT_SEGMENT_BYTES = 256 * 1024;

interface ConfigMap {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  data?: Record<string, string>;
  immutable?: boolean;
}

export interface ControllerRecordStore<S extends { environment: string; service: string }, E extends { environment: string }> {
  readonly dir: string;
  loadService(environment: string, service: string): Promise<S | undefined>;
  saveService(record: S): Promise<void>;
  removeService(environment: string, service: string): Promise<void>;
  listServices(environment: string): Promise<string[]>;
  listEnvironments(): Promise<string[]>;
  loadEnvironment(environment: string): Promise<E | undefined>;
  saveEnvironment(record: E): Promise<void>;
  /**
   * Make this store the only writer of the environment's records (needs `writer`). Returns the previous writer.
   * With a token (the shard Lease term), a claim made under an older term of the same Lease than the stored one
   * is refused (FENCED): a replica that was paused while taking a shard cannot take the records back later.
   */
  claim(environment: string, token?: WriterToken): Promise<string | undefined>;
  /** Refuse every later write of this store (its replica lost the shard). */
  revoke(reason: string): void;
  /** The audit trail, kept with the records. */
  record(entry: AuditEntry): Promise<void>;
  recordMany(entries: AuditEntry[]): Promise<void>;
  list(filter?: { environment?: string; service?: string }): Promise<AuditEntry[]>;
}

/** `slipway-controller-<environment>`, or `slipway-controller-<environment>.<scope>` for a store scoped to one cluster. */
export function controllerConfigMapName(environment: string, scope?: string): string {
  return `slipway-controller-${environment}${scope ? `.${scope}` : ''}`;
}

function checkName(kind: string, name: string): string {
  if (!NAME.test(name)) throw new SlipwayError('BAD_NAME', `${kind} name "${name}" is not a valid name`, 'stalling');
  return name;
}

const serviceKey = (service: string) => `service.${checkName('service', service)}.json`;

export function parseAuditLines(text: string | undefined): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    if (!line.trim()) continue;
    try {
      const entry = JSON.parse(line) as AuditEntry;
      if (entry && typeof entry.id === 'string') out.push(entry);
    } catch {
      // Never written half (each append is one CAS), but a hand edit must not break reading the rest.
    }
  }
  return out;
}

export interface ClusterRecordStoreOptions {
  client: KubeClient;
  namespace: string;
  /** Keep a separate set of records per scope (e.g. per cluster, when each environment/cluster pair is its own shard). */
  scope?: string;
  /** Fence writes: only the writer that claimed the ConfigMap last may write (see claim()). */
  writer?: string;
  maxRetries?: number;
  /** When the live audit key is moved to an archive ConfigMap (default 256 KiB). */
  auditSegmentBytes?: number;
  clock?: { now(): Date };
}

export function createClusterRecordStore<S extends { environment: string; service: string }, E extends { environment: string }>(
  options: ClusterRecordStoreOptions,
): ControllerRecordStore<S, E> {
  const { client, namespace, writer } = options;
  const scope = options.scope === undefined ? undefined : checkName('scope', options.scope);
  const maxRetries = options.maxRetries ?? 8;
  const segmentBytes = options.auditSegmentBytes ?? DEFAULT_AUDIT_SEGMENT_BYTES;
  const clock = options.clock ?? { now: () => new Date() };
  const nameOf = (environment: string) => controllerConfigMapName(checkName('environment', environment), scope);
  const ref = (environment: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', name: nameOf(environment), namespace });
  const read = async (environment: string) => (await client.get(ref(environment))) as ConfigMap | undefined;
  /** The ConfigMap as this store last wrote it: with one writer, the next CAS needs no read first. */
  const cache = new Map<string, ConfigMap>();
  let revoked: string | undefined;
  /** Audit ids already in archives, per environment (archives never change once written). */
  const archivedIds = new Map<string, Set<string>>();
  let writes: Promise<unknown> = Promise.resolve();

  function parse<T>(environment: string, key: string, raw: string | undefined): T | undefined {
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(raw) as T;
    } catch {
      throw new SlipwayError('STATE_CORRUPT', `ConfigMap ${namespace}/${nameOf(environment)} key ${key} is not JSON: fix or delete the key`, 'stalling');
    }
  }

  function fenced(environment: string, holder: string | undefined): SlipwayError {
    return new SlipwayError(
      'FENCED',
      `records of ${environment}${scope ? ` on ${scope}` : ''} belong to ${holder ?? 'another writer'} now, not ${writer}: this replica no longer owns the shard and stopped writing`,
      'waiting',
      { environment, ...(scope ? { scope } : {}), ...(holder ? { writer: holder } : {}) },
    );
  }

  function labels(environment: string, state: string): Record<string, string> {
    return { [LABELS.managedBy]: MANAGER_VALUE, [LABELS.environment]: environment, [STATE_LABEL]: state, ...(scope ? { [SCOPE_LABEL]: scope } : {}) };
  }

  /**
   * Read (or take the cached copy), let `change` edit the data, and write it back with the resourceVersion read.
   * A 409 means someone else wrote in between: read again and redo the change on what is there now.
   */
  async function mutate(
    environment: string,
    change: (data: Record<string, string>, current: ConfigMap | undefined) => boolean,
    annotate?: (annotations: Record<string, string>) => void,
  ): Promise<ConfigMap | undefined> {
    const run = async () => {
      for (let attempt = 0; attempt <= maxRetries; attempt++) {
        if (revoked) throw new SlipwayError('FENCED', `${revoked}: writes to the records of ${environment} are refused`, 'waiting', { environment });
        const current = cache.get(environment) ?? (await read(environment));
        const holder = current?.metadata.annotations?.[WRITER_ANNOTATION];
        if (writer && !annotate && current && holder !== writer) throw fenced(environment, holder);
        const data = { ...(current?.data ?? {}) };
        const annotations = { ...(current?.metadata.annotations ?? {}) };
        if (annotate) annotate(annotations);
        else if (writer && !current) annotations[WRITER_ANNOTATION] = writer;
        if (!change(data, current) && !annotate) return current;
        const body: ConfigMap = {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: {
            name: nameOf(environment),
            namespace,
            labels: labels(environment, 'controller'),
            ...(Object.keys(annotations).length ? { annotations } : {}),
            ...(current?.metadata.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}),
          },
          data,
        };
        try {
          const written = (current ? await client.replace(body as never) : await client.create(body as never)) as ConfigMap;
          cache.set(environment, written);
          return written;
        } catch (err) {
          cache.delete(environment);
          if (!isApiStatus(err, 409)) throw err;
        }
      }
      throw new SlipwayError('STATE_CONFLICT', `could not write controller state of ${environment} after ${maxRetries + 1} attempts`, 'waiting');
    };
    // One write at a time per store: the cache and the audit dedup see each write in order.
    const result = writes.then(run, run);
    writes = result.catch(() => undefined);
    return result;
  }

  async function archives(environment: string): Promise<ConfigMap[]> {
    const selector = `${STATE_LABEL}=audit,${LABELS.environment}=${environment},${scope ? `${SCOPE_LABEL}=${scope}` : `!${SCOPE_LABEL}`}`;
    const maps = await client.list<ConfigMap & { metadata: { name: string } }>('v1', 'ConfigMap', namespace, selector);
    const seq = (m: ConfigMap) => Number(m.metadata.annotations?.[ARCHIVE_ANNOTATION] ?? 0);
    return maps.sort((a, b) => seq(a) - seq(b));
  }

  async function archivedIdsOf(environment: string): Promise<Set<string>> {
    let ids = archivedIds.get(environment);
    if (!ids) {
      ids = new Set((await archives(environment)).flatMap((m) => parseAuditLines(m.data?.[AUDIT_KEY]).map((e) => e.id)));
      archivedIds.set(environment, ids);
    }
    return ids;
  }

  /** Move the live audit lines to a new immutable archive, then empty the live key (both by this writer). */
  async function rotate(environment: string, live: string): Promise<void> {
    const existing = await archives(environment);
    let seq = existing.reduce((max, m) => Math.max(max, Number(m.metadata.annotations?.[ARCHIVE_ANNOTATION] ?? 0)), 0) + 1;
    for (;;) {
      try {
        await client.create({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `${nameOf(environment)}-${seq}.audit`, namespace, labels: labels(environment, 'audit'), annotations: { [ARCHIVE_ANNOTATION]: String(seq) } },
          data: { [AUDIT_KEY]: live },
          immutable: true,
        } as never);
        break;
      } catch (err) {
        // An archive left by a writer that died between the two writes: take the next number (ids dedupe on read).
        if (!isApiStatus(err, 409)) throw err;
        seq += 1;
      }
    }
    const ids = await archivedIdsOf(environment);
    for (const e of parseAuditLines(live)) ids.add(e.id);
    const moved = new Set(parseAuditLines(live).map((e) => e.id));
    await mutate(environment, (data) => {
      // Keep whatever landed after the snapshot that went into the archive.
      const rest = parseAuditLines(data[AUDIT_KEY]).filter((e) => !moved.has(e.id));
      const next = rest.map((e) => `${JSON.stringify(e)}\n`).join('');
      if (next) data[AUDIT_KEY] = next;
      else delete data[AUDIT_KEY];
      return true;
    });
  }

  async function recordMany(entries: AuditEntry[]): Promise<void> {
    if (revoked) throw new SlipwayError('FENCED', `${revoked}: writes to the audit trail are refused`, 'waiting');
    const byEnvironment = new Map<string, AuditEntry[]>();
    for (const e of entries) byEnvironment.set(e.environment, [...(byEnvironment.get(e.environment) ?? []), e]);
    for (const [environment, batch] of byEnvironment) {
      const archived = await archivedIdsOf(environment);
      const written = await mutate(environment, (data) => {
        const seen = new Set(parseAuditLines(data[AUDIT_KEY]).map((e) => e.id));
        const fresh = batch.filter((e) => {
          if (seen.has(e.id) || archived.has(e.id)) return false;
          seen.add(e.id);
          return true;
        });
        if (fresh.length === 0) return false;
        data[AUDIT_KEY] = `${data[AUDIT_KEY] ?? ''}${fresh.map((e) => `${JSON.stringify(e)}\n`).join('')}`;
        return true;
      });
      const live = written?.data?.[AUDIT_KEY];
      if (live && Buffer.byteLength(live) > segmentBytes) await rotate(environment, live);
    }
  }

  const store: ControllerRecordStore<S, E> = {
    dir: `configmap://${namespace}/slipway-controller-*${scope ? `.${scope}` : ''}`,
    async loadService(environment, service) {
      const key = serviceKey(service);
      return parse<S>(environment, key, (await read(environment))?.data?.[key]);
    },
    async saveService(record) {
      const key = serviceKey(record.service);
      const value = JSON.stringify(record);
      await mutate(record.environment, (data) => {
        if (data[key] === value) return false;
        data[key] = value;
        return true;
      });
    },
    async removeService(environment, service) {
      const key = serviceKey(service);
      await mutate(environment, (data) => {
        if (!(key in data)) return false;
        delete data[key];
        return true;
      });
    },
    async listServices(environment) {
      const data = (await read(environment))?.data ?? {};
      return Object.keys(data)
        .filter((k) => k.startsWith('service.') && k.endsWith('.json'))
        .map((k) => k.slice('service.'.length, -'.json'.length))
        .sort();
    },
    async listEnvironments() {
      const selector = `${STATE_LABEL}=controller,${scope ? `${SCOPE_LABEL}=${scope}` : `!${SCOPE_LABEL}`}`;
      const maps = await client.list<ConfigMap & { metadata: { name: string } }>('v1', 'ConfigMap', namespace, selector);
      return maps
        .map((m) => m.metadata.labels?.[LABELS.environment] ?? '')
        .filter((n) => NAME.test(n))
        .sort();
    },
    async loadEnvironment(environment) {
      return parse<E>(environment, ENVIRONMENT_KEY, (await read(environment))?.data?.[ENVIRONMENT_KEY]);
    },
    async saveEnvironment(record) {
      const value = JSON.stringify(record);
      await mutate(record.environment, (data) => {
        if (data[ENVIRONMENT_KEY] === value) return false;
        data[ENVIRONMENT_KEY] = value;
        return true;
      });
    },
    async claim(environment, token) {
      if (!writer) throw new Error('claim() needs a store made with a writer');
      cache.delete(environment);
      let previous: string | undefined;
      await mutate(
        environment,
        () => false,
        (annotations) => {
          previous = annotations[WRITER_ANNOTATION];
          const stored = parseToken(annotations[WRITER_TOKEN_ANNOTATION]);
          if (token && stored && stored.lease === token.lease && stored.uid === token.uid && stored.transitions > token.transitions) {
            throw fenced(environment, previous);
          }
          annotations[WRITER_ANNOTATION] = writer;
          annotations[WRITER_SINCE_ANNOTATION] = clock.now().toISOString();
          if (token) annotations[WRITER_TOKEN_ANNOTATION] = JSON.stringify(token);
          else delete annotations[WRITER_TOKEN_ANNOTATION];
        },
      );
      return previous;
    },
    revoke(reason) {
      revoked = reason;
      cache.clear();
    },
    record: (entry) => recordMany([entry]),
    recordMany,
    async list(filter = {}) {
      const environments = filter.environment ? [filter.environment] : await store.listEnvironments();
      const out: AuditEntry[] = [];
      for (const environment of environments) {
        const seen = new Set<string>();
        const texts = [...(await archives(environment)).map((m) => m.data?.[AUDIT_KEY]), (await read(environment))?.data?.[AUDIT_KEY]];
        for (const e of texts.flatMap((t) => parseAuditLines(t))) {
          if (seen.has(e.id)) continue;
          seen.add(e.id);
          if (!filter.service || e.service === filter.service) out.push(e);
        }
      }
      return out;
    },
  };
  return store;
}

/** Every pair's records in the namespace (ConfigMaps of stores scoped per cluster), in one list call. */
export async function readAllPairRecords<S extends { environment: string; service: string }, E extends { environment: string }>(
  client: KubeClient,
  namespace: string,
): Promise<{ pair: { environment: string; cluster: string }; environment?: E; services: S[]; writer?: string }[]> {
  const maps = await client.list<ConfigMap & { metadata: { name: string } }>('v1', 'ConfigMap', namespace, `${STATE_LABEL}=controller,${SCOPE_LABEL}`);
  const out: { pair: { environment: string; cluster: string }; environment?: E; services: S[]; writer?: string }[] = [];
  for (const m of maps) {
    const environment = m.metadata.labels?.[LABELS.environment];
    const cluster = m.metadata.labels?.[SCOPE_LABEL];
    if (!environment || !cluster) continue;
    const data = m.data ?? {};
    const parseOr = <T>(raw: string | undefined): T | undefined => {
      try {
        return raw === undefined ? undefined : (JSON.parse(raw) as T);
      } catch {
        return undefined;
      }
    };
    const env = parseOr<E>(data[ENVIRONMENT_KEY]);
    const services = Object.keys(data)
      .filter((k) => k.startsWith('service.') && k.endsWith('.json'))
      .sort()
      .flatMap((k) => {
        const rec = parseOr<S>(data[k]);
        return rec ? [rec] : [];
      });
    const writer = m.metadata.annotations?.[WRITER_ANNOTATION];
    out.push({ pair: { environment, cluster }, ...(env ? { environment: env } : {}), services, ...(writer ? { writer } : {}) });
  }
  return out;
}
