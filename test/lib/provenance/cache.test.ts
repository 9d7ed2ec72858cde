/** The verification cache: acceptances only, LRU in memory, shared on disk, never past the key's window. */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VerificationCache, type VerificationResult } from '../../../lib/provenance/index.js';

type Accepted = Extract<VerificationResult, { ok: true }>;
const accepted = (digest: string): Accepted => ({
  ok: true,
  provenance: { digest, builderId: 'b', sourceRepo: 'r', sourceRef: 'refs/heads/main', sourceCommit: 'c', keyName: 'release' },
});
const NOW = new Date('2026-11-23T12:00:00Z');

describe('the verification cache', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'slipway-vcache-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('shares acceptances with another process through the directory', () => {
    new VerificationCache({ dir }).set('k1', accepted('sha256:1'), {});
    const other = new VerificationCache({ dir });
    expect(other.get('k1', NOW)).toEqual(accepted('sha256:1'));
    expect(other.hits).toBe(1);
  });

  it('treats a damaged file as a miss', () => {
    new VerificationCache({ dir }).set('k1', accepted('sha256:1'), {});
    for (const f of readdirSync(dir)) writeFileSync(join(dir, f), '{"result": ');
    expect(new VerificationCache({ dir }).get('k1', NOW)).toBeUndefined();
  });

  it('forgets an acceptance once the signing key is outside its validity window', () => {
    const cache = new VerificationCache();
    cache.set('k1', accepted('sha256:1'), { validFrom: new Date('2026-01-01T00:00:00Z'), validUntil: new Date('2026-12-01T00:00:00Z') });
    expect(cache.get('k1', NOW)).toBeDefined();
    expect(cache.get('k1', new Date('2026-12-02T00:00:00Z'))).toBeUndefined();
    expect(cache.get('k1', new Date('2025-12-31T00:00:00Z'))).toBeUndefined();
  });

  it('drops the least recently used entry beyond its size', () => {
    const cache = new VerificationCache({ maxEntries: 2 });
    cache.set('a', accepted('sha256:a'), {});
    cache.set('b', accepted('sha256:b'), {});
    cache.get('a', NOW);
    cache.set('c', accepted('sha256:c'), {});
    expect(cache.get('b', NOW)).toBeUndefined();
    expect(cache.get('a', NOW)).toBeDefined();
    expect(cache.get('c', NOW)).toBeDefined();
  });
});
