/** The port every target (local processes, Kubernetes) implements. The rollout core emits intents; a target applies them. */

export type Track = 'stable' | 'canary';

export interface ServiceRef {
  environment: string;
  service: string;
}

export interface TrackSpec {
  repository: string;
  digest: string;
  replicas: number;
  port: number;
  healthPath: string;
  env: Record<string, string>;
  proxyPort?: number;
}

export interface TrackStatus {
  digest: string;
  replicas: number;
  readyReplicas: number;
  /** Restarts of this track's instances (crashes, failed startups) since the track started. */
  restarts?: number;
  /** Set when the track can never become ready (crash loop, progress deadline): the reason. */
  failed?: string;
}

export interface ServiceObservation {
  stable?: TrackStatus;
  canary?: TrackStatus;
  /** Share of traffic (0..100) on the canary track. */
  canaryWeight: number;
  /** Where the service answers (local: the proxy URL; kubernetes: the Service DNS name). */
  endpoint?: string;
}

export interface Target {
  readonly type: 'local' | 'kubernetes';
  /** Create or update a track to run `spec` (idempotent). */
  ensureTrack(ref: ServiceRef, track: Track, spec: TrackSpec): Promise<void>;
  /** Route `canaryWeight`% of traffic to canary, the rest to stable (idempotent). */
  setWeight(ref: ServiceRef, canaryWeight: number): Promise<void>;
  /** Make the canary the stable track and remove the old stable (idempotent). */
  promote(ref: ServiceRef): Promise<void>;
  removeTrack(ref: ServiceRef, track: Track): Promise<void>;
  /** Remove everything of a service that left the environment. */
  removeService(ref: ServiceRef): Promise<void>;
  observe(ref: ServiceRef): Promise<ServiceObservation>;
  close(): Promise<void>;
}
