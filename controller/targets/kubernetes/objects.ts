/**
 * Pure manifest builders: what Slipway applies for one service. Same input, same objects, so an apply that
 * changes nothing is a no-op on the API server and drift is "live differs from what these return".
 *
 * Names: Deployments `<svc>` (stable) and `<svc>-canary`; Services `<svc>` (the one clients use: both tracks
 * in replica mode, the active track in blue-green), `<svc>-stable`, `<svc>-canary`, and `<svc>-preview`
 * (blue-green: the track that is not active); an HTTPRoute `<svc>` when the cluster names a gateway.
 */
import type { Track, TrackSpec } from '../types.js';

export const LABELS = {
  app: 'app',
  track: 'slipway.dev/track',
  digest: 'slipway.dev/digest',
  environment: 'slipway.dev/environment',
  managedBy: 'app.kubernetes.io/managed-by',
} as const;

export const ANNOTATIONS = {
  /** The full `sha256:` digest (a label value holds at most 63 characters, so the label is shortened). */
  digest: 'slipway.dev/digest',
  /** The TrackSpec this Deployment was applied from, as JSON: enough to re-apply it (scaling, drift repair). */
  trackSpec: 'slipway.dev/track-spec',
  /** On the `<svc>` Service: the traffic state (see TrafficState). */
  traffic: 'slipway.dev/traffic',
} as const;

export const MANAGER_VALUE = 'slipway';

/** How traffic is split between the tracks of one service. */
export type TrafficMode = 'replicas' | 'gateway' | 'blueGreen';

/** What Slipway keeps on the cluster about a service's traffic, so another replica or a restart resumes. */
export interface TrafficState {
  mode: TrafficMode;
  /** 0..100: the share of traffic meant for the canary (blue-green: 0 or 100). */
  canaryWeight: number;
  /** A promotion in flight: stable is being rolled to the canary's spec; traffic stays on the canary until it is ready. */
  promoting?: boolean;
}

export interface GatewayRef {
  name: string;
  namespace?: string;
}

export interface ServiceContext {
  environment: string;
  service: string;
  namespace: string;
  gateway?: GatewayRef;
  /** Seconds a Deployment may take to progress before the deployment controller marks it failed. */
  progressDeadlineSeconds: number;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export function deploymentName(service: string, track: Track): string {
  return track === 'stable' ? service : `${service}-canary`;
}

export function trackServiceName(service: string, track: Track): string {
  return `${service}-${track}`;
}

export function previewServiceName(service: string): string {
  return `${service}-preview`;
}

/** `sha256:<64 hex>` → the first 63 characters of the hex, the longest legal label value. */
export function digestLabel(digest: string): string {
  const hex = digest.includes(':') ? digest.slice(digest.indexOf(':') + 1) : digest;
  return hex.slice(0, 63);
}

export function imageRef(spec: TrackSpec): string {
  if (!/^sha256:[0-9a-f]{64}$/.test(spec.digest)) {
    throw new Error(`image digest must be a full sha256 digest, got "${spec.digest}"`);
  }
  return `${spec.repository}@${spec.digest}`;
}

function commonLabels(ctx: ServiceContext): Record<string, string> {
  return { [LABELS.app]: ctx.service, [LABELS.environment]: ctx.environment, [LABELS.managedBy]: MANAGER_VALUE };
}

function meta(ctx: ServiceContext, name: string, extraLabels: Record<string, string> = {}, annotations?: Record<string, string>): KubeObject['metadata'] {
  return {
    name,
    namespace: ctx.namespace,
    labels: { ...commonLabels(ctx), ...extraLabels },
    ...(annotations ? { annotations } : {}),
  };
}

/** Replicas each track runs at a canary weight, as Argo Rollouts does without a traffic router (both rounded up). */
export function replicaSplit(total: number, canaryWeight: number): { stable: number; canary: number } {
  const w = Math.min(100, Math.max(0, canaryWeight));
  return { canary: Math.ceil((total * w) / 100), stable: Math.ceil((total * (100 - w)) / 100) };
}

export function deploymentFor(ctx: ServiceContext, track: Track, spec: TrackSpec, replicas: number): KubeObject {
  const podLabels = {
    [LABELS.app]: ctx.service,
    [LABELS.track]: track,
    [LABELS.digest]: digestLabel(spec.digest),
    [LABELS.environment]: ctx.environment,
  };
  const env = Object.keys(spec.env)
    .sort()
    .map((name) => ({ name, value: spec.env[name] }));
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(
      ctx,
      deploymentName(ctx.service, track),
      { [LABELS.track]: track, [LABELS.digest]: digestLabel(spec.digest) },
      { [ANNOTATIONS.digest]: spec.digest, [ANNOTATIONS.trackSpec]: JSON.stringify(canonicalSpec(spec)) },
    ),
    spec: {
      replicas,
      progressDeadlineSeconds: ctx.progressDeadlineSeconds,
      selector: { matchLabels: { [LABELS.app]: ctx.service, [LABELS.track]: track } },
      template: {
        metadata: { labels: podLabels, annotations: { [ANNOTATIONS.digest]: spec.digest } },
        spec: {
          containers: [
            {
              name: ctx.service,
              image: imageRef(spec),
              ports: [{ name: 'http', containerPort: spec.port, protocol: 'TCP' }],
              ...(env.length ? { env } : {}),
              readinessProbe: { httpGet: { path: spec.healthPath, port: 'http' }, periodSeconds: 2, failureThreshold: 3 },
            },
          ],
        },
      },
    },
  };
}

function serviceObject(ctx: ServiceContext, name: string, selector: Record<string, string>, port: number, annotations?: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(ctx, name, {}, annotations),
    spec: {
      type: 'ClusterIP',
      selector,
      ports: [{ name: 'http', port, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

/** The track the `<svc>` Service sends traffic to in blue-green mode. */
export function activeTrack(state: TrafficState): Track {
  if (state.promoting) return 'canary';
  return state.canaryWeight >= 100 ? 'canary' : 'stable';
}

/** Services for a service: `<svc>`, `<svc>-stable`, `<svc>-canary`, and in blue-green `<svc>-preview`. */
export function servicesFor(ctx: ServiceContext, port: number, state: TrafficState): KubeObject[] {
  const app = { [LABELS.app]: ctx.service };
  const rootSelector =
    state.mode === 'blueGreen' ? { ...app, [LABELS.track]: activeTrack(state) } : app;
  const out = [
    serviceObject(ctx, ctx.service, rootSelector, port, { [ANNOTATIONS.traffic]: JSON.stringify(canonicalState(state)) }),
    serviceObject(ctx, trackServiceName(ctx.service, 'stable'), { ...app, [LABELS.track]: 'stable' }, port),
    serviceObject(ctx, trackServiceName(ctx.service, 'canary'), { ...app, [LABELS.track]: 'canary' }, port),
  ];
  if (state.mode === 'blueGreen') {
    const preview: Track = activeTrack(state) === 'stable' ? 'canary' : 'stable';
    out.push(serviceObject(ctx, previewServiceName(ctx.service), { ...app, [LABELS.track]: preview }, port));
  }
  return out;
}

/** Gateway API HTTPRoute splitting by backendRef weight between the per-track Services. */
export function httpRouteFor(ctx: ServiceContext, port: number, state: TrafficState): KubeObject {
  if (!ctx.gateway) throw new Error('httpRouteFor needs a gateway');
  const canary = state.promoting ? 100 : Math.min(100, Math.max(0, state.canaryWeight));
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: meta(ctx, ctx.service),
    spec: {
      parentRefs: [{ name: ctx.gateway.name, ...(ctx.gateway.namespace ? { namespace: ctx.gateway.namespace } : {}) }],
      rules: [
        {
          backendRefs: [
            { name: trackServiceName(ctx.service, 'stable'), port, weight: 100 - canary },
            { name: trackServiceName(ctx.service, 'canary'), port, weight: canary },
          ],
        },
      ],
    },
  };
}

export function canonicalSpec(spec: TrackSpec): TrackSpec {
  const env: Record<string, string> = {};
  for (const k of Object.keys(spec.env).sort()) env[k] = spec.env[k];
  return {
    repository: spec.repository,
    digest: spec.digest,
    replicas: spec.replicas,
    port: spec.port,
    healthPath: spec.healthPath,
    env,
    ...(spec.proxyPort !== undefined ? { proxyPort: spec.proxyPort } : {}),
  };
}

function canonicalState(state: TrafficState): TrafficState {
  return { mode: state.mode, canaryWeight: state.canaryWeight, ...(state.promoting ? { promoting: true } : {}) };
}

/** The TrackSpec a Deployment was applied from, or undefined when the annotation is missing or unreadable. */
export function trackSpecOf(deployment: KubeObject | undefined): TrackSpec | undefined {
  const raw = deployment?.metadata.annotations?.[ANNOTATIONS.trackSpec];
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as TrackSpec;
    return typeof parsed.digest === 'string' && typeof parsed.replicas === 'number' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export function trafficStateOf(service: KubeObject | undefined): TrafficState | undefined {
  const raw = service?.metadata.annotations?.[ANNOTATIONS.traffic];
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as TrafficState;
    return parsed.mode && typeof parsed.canaryWeight === 'number' ? parsed : undefined;
  } catch {
    return undefined;
  }
}
