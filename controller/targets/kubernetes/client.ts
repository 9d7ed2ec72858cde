/**
 * The one place Slipway talks HTTP to a Kubernetes API server: @kubernetes/client-node's KubernetesObjectApi
 * over a KubeConfig, with server-side apply under field manager `slipway`, typed errors, and an `onRequest`
 * hook on the HTTP layer (used to count API calls in the benchmark and the O(1) tests).
 */
import {
  ApiException,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  ServerConfiguration,
  createConfiguration,
  type KubernetesObject,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import { SlipwayError } from '../../../lib/errors.js';

export const FIELD_MANAGER = 'slipway';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

/** One HTTP request, as the counting hook sees it. */
export interface ApiRequest {
  method: string;
  url: string;
}

export interface KubeClientOptions {
  fieldManager?: string;
  /** Called once per HTTP request sent (discovery included). */
  onRequest?: (request: ApiRequest) => void;
}

/** A field that server-side apply refused to take from another manager (HTTP 409). */
export interface FieldConflict {
  field: string;
  message: string;
}

export interface ApplyOptions {
  /** Take fields other managers hold. Only ever set for objects Slipway owns. */
  force?: boolean;
  dryRun?: boolean;
}

export interface KubeClient {
  readonly server: string;
  readonly fieldManager: string;
  apply<T extends KubernetesObject>(object: T, options?: ApplyOptions): Promise<T>;
  get<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined>;
  list<T extends KubernetesObject>(apiVersion: string, kind: string, namespace: string, labelSelector?: string): Promise<T[]>;
  create<T extends KubernetesObject>(object: T): Promise<T>;
  /** Update with the object's resourceVersion as a precondition (optimistic concurrency). */
  replace<T extends KubernetesObject>(object: T): Promise<T>;
  /** Replace the status subresource (tests use it to simulate a kubelet and the deployment controller). */
  replaceStatus<T extends KubernetesObject>(object: T, plural: string): Promise<T>;
  /** Returns false when the object was already gone. */
  delete(ref: ObjectRef): Promise<boolean>;
}

export function isApiStatus(err: unknown, code: number): boolean {
  return err instanceof ApiException && err.code === code;
}

function apiBody(err: unknown): { message?: string; details?: { causes?: { field?: string; message?: string; reason?: string }[] } } {
  if (err instanceof ApiException) {
    const body = err.body as unknown;
    if (typeof body === 'string') {
      try {
        return JSON.parse(body);
      } catch {
        return { message: body };
      }
    }
    if (body && typeof body === 'object') return body as ReturnType<typeof apiBody>;
  }
  return {};
}

/** The fields a 409 from server-side apply names, with the managers that hold them. */
export function conflictsOf(err: unknown): FieldConflict[] {
  return (apiBody(err).details?.causes ?? [])
    .filter((c) => c.reason === 'FieldManagerConflict' || c.field)
    .map((c) => ({ field: c.field ?? '', message: c.message ?? '' }));
}

function describeObject(ref: ObjectRef): string {
  return `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`;
}

export function kubeError(err: unknown, what: string, server: string): SlipwayError {
  if (err instanceof SlipwayError) return err;
  if (err instanceof ApiException) {
    const message = apiBody(err).message ?? `HTTP ${err.code}`;
    const code = err.code as number;
    const kind = code === 400 || code === 403 || code === 404 || code === 422 ? 'stalling' : 'waiting';
    return new SlipwayError('KUBE_API_ERROR', `${what} on ${server}: ${message}`, kind, { status: code, server }, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new SlipwayError('KUBE_UNREACHABLE', `${what}: cannot reach ${server}: ${message}`, 'waiting', { server }, { cause: err });
}

/** Plain JSON of whatever the typed deserializer returned (Dates become ISO strings). */
function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

export function createKubeClient(kc: KubeConfig, options: KubeClientOptions = {}): KubeClient {
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw new SlipwayError('KUBE_CONFIG', 'kubeconfig has no current cluster: set current-context or name a context', 'stalling');
  }
  const server = cluster.server;
  const fieldManager = options.fieldManager ?? FIELD_MANAGER;
  const onRequest = options.onRequest;
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(server, {}),
    authMethods: { default: kc },
    promiseMiddleware: onRequest
      ? [
          {
            pre: async (ctx: RequestContext) => {
              onRequest({ method: ctx.getHttpMethod(), url: ctx.getUrl() });
              return ctx;
            },
            post: async (rsp: ResponseContext) => rsp,
          },
        ]
      : [],
  });
  const api = new KubernetesObjectApi(configuration);
  const header = (ref: ObjectRef) => ({
    apiVersion: ref.apiVersion,
    kind: ref.kind,
    metadata: { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) },
  });
  const refOf = (o: KubernetesObject): ObjectRef => ({
    apiVersion: o.apiVersion ?? 'v1',
    kind: o.kind ?? '',
    name: o.metadata?.name ?? '',
    namespace: o.metadata?.namespace,
  });

  return {
    server,
    fieldManager,
    async apply(object, opts = {}) {
      try {
        const result = await api.patch(
          object,
          undefined,
          opts.dryRun ? 'All' : undefined,
          fieldManager,
          opts.force ? true : undefined,
          PatchStrategy.ServerSideApply,
        );
        return plain(result);
      } catch (err) {
        if (isApiStatus(err, 409)) throw err;
        throw kubeError(err, `apply ${describeObject(refOf(object))}`, server);
      }
    },
    async get<T extends KubernetesObject>(ref: ObjectRef) {
      try {
        return plain(await api.read(header(ref))) as T;
      } catch (err) {
        if (isApiStatus(err, 404)) return undefined;
        throw kubeError(err, `get ${describeObject(ref)}`, server);
      }
    },
    async list(apiVersion, kind, namespace, labelSelector) {
      try {
        const result = await api.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, labelSelector);
        return plain(result.items) as never;
      } catch (err) {
        throw kubeError(err, `list ${kind} in ${namespace}`, server);
      }
    },
    async create(object) {
      try {
        return plain(await api.create(object, undefined, undefined, fieldManager));
      } catch (err) {
        if (isApiStatus(err, 409)) throw err;
        throw kubeError(err, `create ${describeObject(refOf(object))}`, server);
      }
    },
    async replace(object) {
      try {
        return plain(await api.replace(object, undefined, undefined, fieldManager));
      } catch (err) {
        if (isApiStatus(err, 409)) throw err;
        throw kubeError(err, `replace ${describeObject(refOf(object))}`, server);
      }
    },
    async replaceStatus(object, plural) {
      const ref = refOf(object);
      const group = ref.apiVersion.includes('/') ? `/apis/${ref.apiVersion}` : `/api/${ref.apiVersion}`;
      const path = `${group}/namespaces/${ref.namespace}/${plural}/${ref.name}/status`;
      const ctx = configuration.baseServer.makeRequestContext(path, 'PUT' as never);
      ctx.setHeaderParam('Content-Type', 'application/json');
      ctx.setHeaderParam('Accept', 'application/json');
      ctx.setBody(JSON.stringify(object));
      await kc.applySecurityAuthentication(ctx);
      onRequest?.({ method: 'PUT', url: ctx.getUrl() });
      const rsp = await configuration.httpApi.send(ctx).toPromise();
      const text = await rsp.body.text();
      if (rsp.httpStatusCode >= 300) {
        throw new SlipwayError('KUBE_API_ERROR', `update status of ${describeObject(ref)}: HTTP ${rsp.httpStatusCode} ${text}`, 'generic');
      }
      return JSON.parse(text) as never;
    },
    async delete(ref) {
      try {
        await api.delete(header(ref), undefined, undefined, undefined, undefined, 'Background');
        return true;
      } catch (err) {
        if (isApiStatus(err, 404)) return false;
        throw kubeError(err, `delete ${describeObject(ref)}`, server);
      }
    },
  };
}
