/**
 * The Kubernetes target: the Target port over server-side apply (field manager `slipway`).
 *
 * Traffic per service follows its mode (kept on the cluster in the `<svc>` Service's annotation, so another
 * replica or a restarted controller resumes):
 * - `replicas`: canary by replica ratio (stable and canary scaled to their share of the declared replicas);
 * - `gateway`: both tracks at full size, a Gateway API HTTPRoute splits by backendRef weight;
 * - `blueGreen`: both tracks at full size, the `<svc>` Service's selector points at one track, switched at once;
 *   `<svc>-preview` selects the other.
 *
 * Applies never force fields another manager holds, except on objects Slipway itself manages (label
 * `app.kubernetes.io/managed-by=slipway`): there a conflict is a hand edit, reported as drift and put back.
 */
import { SlipwayError } from '../../../lib/errors.js';
import type { ServiceObservation, ServiceRef, Target, Track, TrackSpec } from '../types.js';
import { conflictsOf, isApiStatus, type KubeClient, type ObjectRef } from './client.js';
import {
  LABELS,
  MANAGER_VALUE,
  deploymentFor,
  deploymentName,
  httpRouteFor,
  previewServiceName,
  replicaSplit,
  servicesFor,
  trackServiceName,
  trackSpecOf,
  trafficStateOf,
  type GatewayRef,
  type KubeObject,
  type ServiceContext,
  type TrafficMode,
  type TrafficState,
} from './objects.js';
import { deploymentReadiness, trackStatusOf } from './readiness.js';

/** A field that differed from what Slipway applied, found and put back. */
export interface DriftReport {
  environment: string;
  service: string;
  cluster: string;
  object: string;
  /** Dotted field path, e.g. `spec.template.spec.containers[0].image`. */
  field: string;
  /** Who changed it, when the API server named a manager (server-side apply conflict). */
  manager?: string;
  message: string;
}

export interface KubernetesTargetOptions {
  client: KubeClient;
  namespace: string;
  /** The cluster's name in environment.yaml (reports and errors name it). */
  cluster?: string;
  gateway?: GatewayRef;
  /** How a service's traffic is split when it has no state on the cluster yet (default: its strategy decides: canary → replicas or gateway). */
  trafficModeOf?: (ref: ServiceRef) => 'canary' | 'blueGreen' | 'rolling';
  progressDeadlineSeconds?: number;
  onDrift?: (report: DriftReport) => void;
}

export interface KubernetesTarget extends Target {
  readonly type: 'kubernetes';
  readonly cluster: string;
  /** Compare every managed object with what Slipway applied, put differences back, and report them. */
  repairDrift(ref: ServiceRef): Promise<DriftReport[]>;
}

interface Live {
  stable?: KubeObject;
  canary?: KubeObject;
  root?: KubeObject;
}

export function createKubernetesTarget(options: KubernetesTargetOptions): KubernetesTarget {
  const { client, namespace } = options;
  const cluster = options.cluster ?? 'default';
  const progressDeadlineSeconds = options.progressDeadlineSeconds ?? 600;

  const ctxOf = (ref: ServiceRef): ServiceContext => ({
    environment: ref.environment,
    service: ref.service,
    namespace,
    progressDeadlineSeconds,
    ...(options.gateway ? { gateway: options.gateway } : {}),
  });

  const objRef = (apiVersion: string, kind: string, name: string): ObjectRef => ({ apiVersion, kind, name, namespace });

  function initialState(ref: ServiceRef): TrafficState {
    const strategy = options.trafficModeOf?.(ref) ?? 'canary';
    const mode: TrafficMode = strategy === 'blueGreen' ? 'blueGreen' : options.gateway ? 'gateway' : 'replicas';
    return { mode, canaryWeight: 0 };
  }

  async function readLive(ref: ServiceRef): Promise<Live> {
    const [stable, canary, root] = await Promise.all([
      client.get<KubeObject>(objRef('apps/v1', 'Deployment', deploymentName(ref.service, 'stable'))),
      client.get<KubeObject>(objRef('apps/v1', 'Deployment', deploymentName(ref.service, 'canary'))),
      client.get<KubeObject>(objRef('v1', 'Service', ref.service)),
    ]);
    return { stable, canary, root };
  }

  function assertOurs(object: KubeObject | undefined, what: string): void {
    if (object && object.metadata.labels?.[LABELS.managedBy] !== MANAGER_VALUE) {
      throw new SlipwayError(
        'KUBE_NOT_OURS',
        `${what} in ${namespace} on cluster ${cluster} exists and is not managed by Slipway (label ${LABELS.managedBy}=${MANAGER_VALUE} missing): rename the service or delete the object`,
        'stalling',
        { namespace, cluster },
      );
    }
  }

  /** Apply without force; a conflict on an object Slipway manages is a hand edit: report it and take the fields back. */
  async function applyOwned(ref: ServiceRef, object: KubeObject, drift: DriftReport[]): Promise<KubeObject> {
    try {
      return await client.apply(object);
    } catch (err) {
      if (!isApiStatus(err, 409)) throw err;
      const live = await client.get<KubeObject>(objRef(object.apiVersion, object.kind, object.metadata.name));
      assertOurs(live, `${object.kind} ${object.metadata.name}`);
      for (const conflict of conflictsOf(err)) {
        const manager = /conflict with "([^"]+)"/.exec(conflict.message)?.[1];
        report(drift, {
          environment: ref.environment,
          service: ref.service,
          cluster,
          object: `${object.kind}/${object.metadata.name}`,
          field: conflict.field.replace(/^\./, ''),
          ...(manager ? { manager } : {}),
          message: `changed outside Slipway${manager ? ` by ${manager}` : ''}: ${conflict.message}`,
        });
      }
      return client.apply(object, { force: true });
    }
  }

  function report(drift: DriftReport[], r: DriftReport): void {
    drift.push(r);
    options.onDrift?.(r);
  }

  /** The whole desired set for a service, from the specs and traffic state on (or about to be on) the cluster. */
  function desiredObjects(ref: ServiceRef, specs: { stable?: TrackSpec; canary?: TrackSpec }, state: TrafficState): KubeObject[] {
    const ctx = ctxOf(ref);
    const out: KubeObject[] = [];
    for (const track of ['stable', 'canary'] as const) {
      const spec = specs[track];
      if (!spec) continue;
      out.push(deploymentFor(ctx, track, spec, replicasFor(track, spec, specs, state)));
    }
    const port = (specs.stable ?? specs.canary)?.port;
    if (port !== undefined) {
      out.push(...servicesFor(ctx, port, state));
      if (state.mode === 'gateway' && ctx.gateway) out.push(httpRouteFor(ctx, port, state));
    }
    return out;
  }

  function replicasFor(track: Track, spec: TrackSpec, specs: { stable?: TrackSpec; canary?: TrackSpec }, state: TrafficState): number {
    if (state.mode !== 'replicas' || !specs.stable || !specs.canary) return spec.replicas;
    if (state.promoting) return spec.replicas; // stable rolls to full size; the canary keeps serving until it is ready
    const split = replicaSplit(specs.stable.replicas, state.canaryWeight);
    return track === 'stable' ? split.stable : Math.max(split.canary, 0);
  }

  async function applyAll(ref: ServiceRef, objects: KubeObject[]): Promise<DriftReport[]> {
    const drift: DriftReport[] = [];
    // Deployments first, then Services, then the route: traffic never points at something not yet there.
    for (const o of objects) await applyOwned(ref, o, drift);
    return drift;
  }

  async function deleteIfPresent(ref: ObjectRef): Promise<void> {
    await client.delete(ref);
  }

  /** A promotion whose new stable is ready: move traffic back to stable and remove the canary. */
  async function settlePromotion(ref: ServiceRef, live: Live, state: TrafficState): Promise<Live> {
    if (!state.promoting || !live.stable) return live;
    const stableSpec = trackSpecOf(live.stable);
    const canarySpec = trackSpecOf(live.canary);
    const ready = deploymentReadiness(live.stable);
    if (live.canary && (!ready.complete || (canarySpec && stableSpec?.digest !== canarySpec.digest))) return live;
    const settled: TrafficState = { mode: state.mode, canaryWeight: 0 };
    await applyAll(ref, desiredObjects(ref, { stable: stableSpec }, settled));
    await deleteIfPresent(objRef('apps/v1', 'Deployment', deploymentName(ref.service, 'canary')));
    return { ...live, canary: undefined };
  }

  const target: KubernetesTarget = {
    type: 'kubernetes',
    cluster,

    async ensureTrack(ref, track, spec) {
      const live = await readLive(ref);
      assertOurs(live.root, `Service ${ref.service}`);
      assertOurs(live.stable, `Deployment ${deploymentName(ref.service, 'stable')}`);
      const stored = trafficStateOf(live.root);
      // A new rollout (no canary yet) starts in the mode the service's strategy asks for now; one in flight
      // keeps the mode it started with, so a strategy edit never reshuffles traffic mid-rollout.
      const state = stored && (live.canary || stored.promoting) ? stored : { ...initialState(ref), ...(stored && !live.canary ? { canaryWeight: 0 } : {}) };
      const specs = { stable: trackSpecOf(live.stable), canary: trackSpecOf(live.canary), [track]: spec };
      const objects = desiredObjects(ref, specs, state).filter(
        // The other track's Deployment is only re-applied when its replicas depend on this one (replica ratio).
        (o) => o.kind !== 'Deployment' || o.metadata.name === deploymentName(ref.service, track) || state.mode === 'replicas',
      );
      await applyAll(ref, objects);
    },

    async setWeight(ref, canaryWeight) {
      if (!Number.isFinite(canaryWeight) || canaryWeight < 0 || canaryWeight > 100) {
        throw new SlipwayError('BAD_WEIGHT', `canary weight must be 0..100, got ${canaryWeight}`, 'stalling');
      }
      const live = await readLive(ref);
      const prior = trafficStateOf(live.root) ?? initialState(ref);
      const state: TrafficState = {
        mode: prior.mode,
        canaryWeight: prior.mode === 'blueGreen' ? (canaryWeight >= 100 ? 100 : 0) : canaryWeight,
      };
      const specs = { stable: trackSpecOf(live.stable), canary: trackSpecOf(live.canary) };
      const objects = desiredObjects(ref, specs, state).filter((o) => o.kind !== 'Deployment' || state.mode === 'replicas');
      await applyAll(ref, objects);
    },

    async promote(ref) {
      const live = await readLive(ref);
      const canarySpec = trackSpecOf(live.canary);
      if (!canarySpec) {
        // Idempotent: nothing to promote means it already happened (or never started).
        const state = trafficStateOf(live.root);
        if (state?.promoting) await settlePromotion(ref, live, state);
        return;
      }
      const prior = trafficStateOf(live.root) ?? initialState(ref);
      const state: TrafficState = { mode: prior.mode, canaryWeight: 100, promoting: true };
      await applyAll(ref, desiredObjects(ref, { stable: canarySpec, canary: canarySpec }, state));
      const after = await readLive(ref);
      await settlePromotion(ref, after, state);
    },

    async removeTrack(ref, track) {
      const live = await readLive(ref);
      await deleteIfPresent(objRef('apps/v1', 'Deployment', deploymentName(ref.service, track)));
      const prior = trafficStateOf(live.root);
      if (!prior) return;
      // Traffic goes entirely to the track that remains.
      const state: TrafficState = { mode: prior.mode, canaryWeight: track === 'canary' ? 0 : 100 };
      const remaining = track === 'canary' ? { stable: trackSpecOf(live.stable) } : { canary: trackSpecOf(live.canary) };
      const objects = desiredObjects(ref, remaining, state).filter((o) => o.kind !== 'Deployment' || state.mode === 'replicas');
      await applyAll(ref, objects);
    },

    async removeService(ref) {
      const names = [
        objRef('apps/v1', 'Deployment', deploymentName(ref.service, 'canary')),
        objRef('apps/v1', 'Deployment', deploymentName(ref.service, 'stable')),
        objRef('v1', 'Service', previewServiceName(ref.service)),
        objRef('v1', 'Service', trackServiceName(ref.service, 'canary')),
        objRef('v1', 'Service', trackServiceName(ref.service, 'stable')),
        objRef('v1', 'Service', ref.service),
      ];
      if (options.gateway) names.push(objRef('gateway.networking.k8s.io/v1', 'HTTPRoute', ref.service));
      for (const r of names) {
        const live = await client.get<KubeObject>(r);
        if (!live) continue;
        if (live.metadata.labels?.[LABELS.managedBy] !== MANAGER_VALUE) continue; // never delete what is not ours
        await deleteIfPresent(r);
      }
    },

    async observe(ref): Promise<ServiceObservation> {
      // The one write observe may make: finishing a promotion whose new stable has become ready (the
      // deployment controller got there between two looks), so the core sees it settled without another intent.
      let live = await readLive(ref);
      const state = trafficStateOf(live.root);
      if (state?.promoting) live = await settlePromotion(ref, live, state);
      const stateAfter = live.canary ? state : state && { ...state, canaryWeight: 0, promoting: false };
      return {
        ...(live.stable ? { stable: trackStatusOf(live.stable) } : {}),
        ...(live.canary ? { canary: trackStatusOf(live.canary) } : {}),
        canaryWeight: live.canary ? (stateAfter?.canaryWeight ?? 0) : 0,
        ...(live.root ? { endpoint: `http://${ref.service}.${namespace}.svc.cluster.local:${portOf(live.root)}` } : {}),
      };
    },

    async repairDrift(ref) {
      const live = await readLive(ref);
      const state = trafficStateOf(live.root);
      const specs = { stable: trackSpecOf(live.stable), canary: trackSpecOf(live.canary) };
      if (!state && !specs.stable && !specs.canary) return [];
      const desired = desiredObjects(ref, specs, state ?? initialState(ref));
      const drift: DriftReport[] = [];
      for (const object of desired) {
        const current = await client.get<KubeObject>(objRef(object.apiVersion, object.kind, object.metadata.name));
        const what = `${object.kind}/${object.metadata.name}`;
        if (!current) {
          report(drift, { environment: ref.environment, service: ref.service, cluster, object: what, field: '', message: `${what} was deleted outside Slipway` });
        } else {
          assertOurs(current, what);
          for (const field of differences(object, current)) {
            report(drift, { environment: ref.environment, service: ref.service, cluster, object: what, field, message: `${field} of ${what} was changed outside Slipway` });
          }
        }
      }
      if (drift.length === 0) return drift;
      // Conflicts here are the same hand edits already reported: applyOwned takes the fields back.
      for (const object of desired) await applyOwned(ref, object, []);
      return drift;
    },

    async close() {},
  };
  return target;
}

function portOf(service: KubeObject): number | undefined {
  return ((service.spec as { ports?: { port?: number }[] } | undefined)?.ports ?? [])[0]?.port;
}

/** Paths where `desired` sets a value that `live` does not hold (a subset comparison: defaults the server adds are fine). */
export function differences(desired: unknown, live: unknown, path = ''): string[] {
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return [path];
    return desired.flatMap((d, i) => differences(d, live[i], `${path}[${i}]`));
  }
  if (desired !== null && typeof desired === 'object') {
    if (live === null || typeof live !== 'object' || Array.isArray(live)) return [path];
    return Object.entries(desired as Record<string, unknown>).flatMap(([k, v]) =>
      differences(v, (live as Record<string, unknown>)[k], path ? `${path}.${k}` : k),
    );
  }
  return desired === live ? [] : [path];
}
