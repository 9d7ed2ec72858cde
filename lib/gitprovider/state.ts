/**
 * What a merge decision needs from the environments repository at one commit of main: the environment's
 * settings (approvals, auto-merge), its freeze windows, the quarantine list, and the trust policy with its
 * public keys for verification. Every file is validated by its schema; a broken file is a refusal that
 * names file:line:col, never a half-read state.
 */
import { formatProblem, validateFile, type EnvironmentConfig, type FileKind, type FileKinds, type FreezeWindow, type QuarantineEntry, type SlipwayConfig } from '../../schemas/index.js';
import { SlipwayError } from '../errors.js';
/** Reads one file at one commit (a repository on disk, or the GitHub contents API). */
export interface FileReader {
  readFile(commit: string, path: string): Promise<string | undefined>;
}

export interface PromotionState {
  commit: string;
  config: SlipwayConfig;
  environment: EnvironmentConfig;
  freeze: FreezeWindow[];
  quarantine: QuarantineEntry[];
  publicKeys: Record<string, string>;
}

async function readValidated<K extends FileKind>(repo: FileReader, commit: string, kind: K, path: string): Promise<FileKinds[K] | undefined> {
  const text = await repo.readFile(commit, path);
  if (text === undefined) return undefined;
  const result = validateFile(kind, text, path);
  if (!result.ok) {
    throw new SlipwayError('INVALID_REPO_FILE', `${path} at ${commit.slice(0, 12)} is not valid:\n  ${result.problems.map(formatProblem).join('\n  ')}`, 'stalling', {
      file: path,
      problems: result.problems,
    });
  }
  return result.value;
}

export function servicePath(environment: string, service: string): string {
  return `${environment}/services/${service}.yaml`;
}

export async function readSlipwayConfig(repo: FileReader, commit: string): Promise<SlipwayConfig> {
  const config = await readValidated(repo, commit, 'Slipway', 'slipway.yaml');
  if (!config) throw new SlipwayError('NO_SLIPWAY_YAML', `slipway.yaml is missing at ${commit.slice(0, 12)}; is this an environments repository?`, 'stalling', {});
  return config;
}

export async function readPromotionState(repo: FileReader, commit: string, environment: string): Promise<PromotionState> {
  const config = await readSlipwayConfig(repo, commit);
  if (!config.spec.environments.includes(environment)) {
    throw new SlipwayError(
      'UNKNOWN_ENVIRONMENT',
      `environment "${environment}" is not listed in slipway.yaml (environments: ${config.spec.environments.join(', ')})`,
      'stalling',
      { environment },
    );
  }
  const env = await readValidated(repo, commit, 'Environment', `${environment}/environment.yaml`);
  if (!env) throw new SlipwayError('NO_ENVIRONMENT_YAML', `${environment}/environment.yaml is missing`, 'stalling', { environment });
  const freeze = await readValidated(repo, commit, 'FreezeWindows', `${environment}/freeze.yaml`);
  const quarantine = await readValidated(repo, commit, 'Quarantine', 'quarantine.yaml');
  const publicKeys: Record<string, string> = {};
  for (const key of config.spec.trust.keys) {
    const pem = await repo.readFile(commit, key.publicKey);
    if (pem !== undefined) publicKeys[key.name] = pem;
  }
  return {
    commit,
    config,
    environment: env,
    freeze: freeze?.spec.windows ?? [],
    quarantine: quarantine?.spec.digests ?? [],
    publicKeys,
  };
}

/** The quarantine entry that bars `digest` from `environment`/`service`, if any. */
export function quarantined(entries: readonly QuarantineEntry[], digest: string, environment: string, service: string): QuarantineEntry | undefined {
  return entries.find(
    (e) => e.digest === digest && (e.environment === undefined || e.environment === environment) && (e.service === undefined || e.service === service),
  );
}

/** A proposal never carries a service file the controller would refuse: validate what is about to be committed. */
export function assertValidServiceFile(text: string, path: string): void {
  const result = validateFile('Service', text, path);
  if (!result.ok) {
    throw new SlipwayError('INVALID_SERVICE_FILE', `the bumped ${path} would not be valid, so nothing was proposed:\n  ${result.problems.map(formatProblem).join('\n  ')}`, 'stalling', {
      file: path,
      problems: result.problems,
    });
  }
}
