/** The desired state of every environment, read from one commit of the environments repository. */
import type {
  EnvironmentConfig,
  FreezeConfig,
  QuarantineEntry,
  ServiceConfig,
  SlipwayConfig,
} from '../../schemas/index.js';

/** Problems are defined with the schemas (validateFile reports them too); re-exported here. */
export type { Problem } from '../../schemas/index.js';
import type { Problem } from '../../schemas/index.js';

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
