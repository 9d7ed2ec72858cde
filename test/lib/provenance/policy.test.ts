/** The pure policy half: which sources a service may be built from, which builders are trusted, key windows. */
import { globMatch, policyHashOf, sourceAllowed, verifyAttestations, type VerificationResult } from '../../../lib/provenance/index.js';
import type { FetchedAttestations } from '../../../lib/attest/index.js';
import type { TrustPolicy } from '../../../schemas/index.js';
import { bundleToJSON } from '@sigstore/bundle';
import { DSSEBundleBuilder } from '@sigstore/sign';
import { createKeySigner } from '../../../builder/sign/index.js';
import { buildProvenance } from '../../../builder/provenance/index.js';
import { description, digestOf, makeKey, policyTrusting, signedBundle } from './fixtures.js';

const policy: TrustPolicy = {
  keys: [{ name: 'release', publicKey: 'keys/release.pub' }],
  builders: ['https://slipway.dev/builder/*'],
  sources: [
    { repo: 'https://git.example/acme/*', branches: ['main', 'release/*'] },
    { repo: 'https://git.example/payments/api', services: ['payments-*'] },
  ],
};

describe('allowed sources', () => {
  it.each([
    ['web', 'https://git.example/acme/web', 'refs/heads/main', true],
    ['web', 'https://git.example/acme/web', 'refs/heads/release/1.2', true],
    ['web', 'https://git.example/acme/web', 'refs/heads/feature/x', false],
    ['web', 'https://git.example/acmecorp/web', 'refs/heads/main', false],
    ['payments-api', 'https://git.example/payments/api', 'refs/heads/main', true],
    ['payments-api', 'https://git.example/payments/api', 'refs/heads/dev', false],
    ['web', 'https://git.example/payments/api', 'refs/heads/main', false],
  ])('service %s from %s %s → %s', (service, repo, ref, allowed) => {
    expect(sourceAllowed(policy, service, repo, ref)).toBe(allowed);
  });

  it('treats every character but * literally in patterns', () => {
    expect(globMatch('https://git.example/a.b', 'https://git.exampleXa.b')).toBe(false);
    expect(globMatch('release/(1)', 'release/(1)')).toBe(true);
  });
});

describe('the policy hash', () => {
  it('is the same however the keys are ordered, and changes with the content', () => {
    const reordered = { sources: policy.sources, builders: policy.builders, keys: policy.keys };
    expect(policyHashOf(reordered)).toBe(policyHashOf(policy));
    expect(policyHashOf({ ...policy, builders: ['https://other'] })).not.toBe(policyHashOf(policy));
  });
});

describe('key validity windows', () => {
  const key = makeKey('release');
  const digest = digestOf('d');
  async function fetched(signer = key): Promise<FetchedAttestations> {
    const signed = await signedBundle(signer, digest);
    return { digest, referrersVia: 'api', problems: [], attestations: [{ origin: 'referrer x', via: 'referrer', bundle: signed.bundle }] };
  }
  function run(f: FetchedAttestations, window: { validFrom?: string; validUntil?: string }, now: string): VerificationResult {
    return verifyAttestations(f, {
      repository: 'r',
      digest,
      service: 'web',
      policy: policyTrusting([{ name: 'release', ...window }]),
      publicKeys: { release: key.publicKeyPem },
      now: new Date(now),
    });
  }

  it('refuses a key that is not valid yet with KEY_EXPIRED', async () => {
    const result = run(await fetched(), { validFrom: '2027-01-01T00:00:00Z' }, '2026-11-23T12:00:00Z');
    expect(result).toMatchObject({ ok: false, code: 'KEY_EXPIRED', message: expect.stringContaining('not valid before 2027-01-01') });
  });

  it('accepts inside the window', async () => {
    expect(run(await fetched(), { validFrom: '2026-01-01T00:00:00Z', validUntil: '2027-01-01T00:00:00Z' }, '2026-11-23T12:00:00Z').ok).toBe(true);
  });

  it('calls a forged signature naming an expired key BAD_SIGNATURE, not KEY_EXPIRED', async () => {
    const forged = await fetched({ ...makeKey('x'), name: 'release' });
    const result = run(forged, { validUntil: '2026-01-01T00:00:00Z' }, '2026-11-23T12:00:00Z');
    expect(result).toMatchObject({ ok: false, code: 'BAD_SIGNATURE' });
  });
});

describe('what a good signature does not excuse', () => {
  const key = makeKey('release');
  const digest = digestOf('f');

  async function signedRaw(payload: unknown, payloadType: string): Promise<FetchedAttestations> {
    const builder = new DSSEBundleBuilder({ signer: createKeySigner(key), witnesses: [] });
    const bundle = bundleToJSON(await builder.create({ data: Buffer.from(JSON.stringify(payload)), type: payloadType }));
    return { digest, referrersVia: 'api', problems: [], attestations: [{ origin: 'referrer y', via: 'referrer', bundle }] };
  }
  function run(f: FetchedAttestations): VerificationResult {
    return verifyAttestations(f, { repository: 'r', digest, service: 'web', policy: policyTrusting([{ name: 'release' }]), publicKeys: { release: key.publicKeyPem } });
  }
  const statement = () => JSON.parse(JSON.stringify(buildProvenance(description(digest))));

  it('refuses a payload type other than in-toto as MALFORMED', async () => {
    expect(run(await signedRaw(statement(), 'text/plain'))).toMatchObject({ ok: false, code: 'MALFORMED', message: expect.stringContaining('payloadType text/plain') });
  });

  it('refuses a statement type other than in-toto Statement v1 as MALFORMED', async () => {
    expect(run(await signedRaw({ ...statement(), _type: 'https://in-toto.io/Statement/v0.1' }, 'application/vnd.in-toto+json'))).toMatchObject({ ok: false, code: 'MALFORMED' });
  });

  it('refuses a predicate other than SLSA provenance v1 as MALFORMED', async () => {
    const result = run(await signedRaw({ ...statement(), predicateType: 'https://slsa.dev/provenance/v0.2' }, 'application/vnd.in-toto+json'));
    expect(result).toMatchObject({ ok: false, code: 'MALFORMED', message: expect.stringContaining('predicateType is https://slsa.dev/provenance/v0.2') });
  });

  it('refuses provenance without a source as MALFORMED', async () => {
    const s = statement();
    delete s.predicate.buildDefinition.externalParameters.source;
    expect(run(await signedRaw(s, 'application/vnd.in-toto+json'))).toMatchObject({ ok: false, code: 'MALFORMED', message: expect.stringContaining('source.repo is missing') });
  });
});
