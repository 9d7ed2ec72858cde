/** Shared by the supply-chain tests: real keys, real statements, real signatures. */
import { generateKeyPairSync } from 'node:crypto';
import { buildProvenance, type BuildDescription } from '../../../builder/provenance/index.js';
import { signStatement, type SigningKeyMaterial } from '../../../builder/sign/index.js';
import type { TrustPolicy } from '../../../schemas/index.js';

export const COMMIT = '0123456789abcdef0123456789abcdef01234567';
export const SOURCE_REPO = 'https://git.example/acme/web';

export function makeKey(name: string, namedCurve: 'P-256' | 'P-384' = 'P-256'): SigningKeyMaterial {
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return { name, privateKeyPem: privateKey, publicKeyPem: publicKey };
}

export function digestOf(char: string): string {
  return `sha256:${char.repeat(64)}`;
}

export function description(digest: string, overrides: Partial<BuildDescription> = {}): BuildDescription {
  return {
    image: { name: '127.0.0.1:5000/web', digest },
    source: { repo: SOURCE_REPO, ref: 'refs/heads/main', commit: COMMIT },
    pipelinePath: '.slipway/pipeline.yaml',
    startedOn: '2026-11-23T10:00:00Z',
    finishedOn: '2026-11-23T10:01:00Z',
    builderVersion: '0.1.0',
    ...overrides,
  };
}

export async function signedBundle(key: SigningKeyMaterial, digest: string, overrides: Partial<BuildDescription> = {}) {
  return signStatement(buildProvenance(description(digest, overrides)), { mode: 'key', key });
}

export function policyTrusting(keys: { name: string; validFrom?: string; validUntil?: string }[], extra: Partial<TrustPolicy> = {}): TrustPolicy {
  return {
    keys: keys.map((k) => ({ publicKey: `keys/${k.name}.pub`, ...k })),
    builders: ['https://slipway.dev/builder/v1'],
    sources: [{ repo: 'https://git.example/acme/*', branches: ['main', 'release/*'] }],
    ...extra,
  };
}
