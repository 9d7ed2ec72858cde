/** The desired state of every environment, read from one commit of the environments repository. */
import type {
  EnvironmentConfig,
  FreezeConfig,
  QuarantineEntry,
  ServiceConfig,
  SlipwayConfig,
} from '../../schemas/index.js';

/** One problem in one file: where, which rule, and a sentence a person can act on. */
export interface Problem {
  file: string;
  line: number;
  column: number;
  /** Field path, dotted: `spec.image.digest`, `spec.strategy.canary.steps[2].setWeight`. */
  path: string;
  message: string;
  rule: string;
}

export interface EnvironmentState {
  name: string;
  config: EnvironmentConfig;
  freeze?: FreezeConfig;
  services: Record<string, ServiceConfig>;
}

export interface DesiredState {
  commit: string;
  config: SlipwayConfig;
  /** PEM public keys by trusted key name, read from the paths the trust policy names. */
  publicKeys: Record<string, string>;
  quarantine: QuarantineEntry[];
  /** In promotion order. */
  environments: EnvironmentState[];
}

export type LoadResult = { ok: true; state: DesiredState } | { ok: false; commit: string; problems: Problem[] };

export type ServiceChangeKind = 'added' | 'modified' | 'removed';

export interface ServiceChange {
  environment: string;
  service: string;
  kind: ServiceChangeKind;
  /** Repo-relative path of the service file. */
  file: string;
}

export interface CommitDiff {
  from: string;
  to: string;
  services: ServiceChange[];
  /** Files outside services/ that changed (slipway.yaml, environment.yaml, freeze.yaml, quarantine.yaml, keys). */
  otherFiles: string[];
}
