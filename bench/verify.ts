/**
 * Verify cost, cold vs cached: `node --import tsx bench/verify.ts [count]` (default 1000).
 *
 * 1. core, cold: N distinct signed attestations already fetched → verifyAttestations (sigstore-js signature
 *    check + statement/policy checks). This is the per-attestation CPU cost the issue targets (< 5 ms).
 * 2. warm: the same N digests through verifyImage with a VerificationCache that already holds them (< 0.1 ms).
 * 3. end to end, cold: verifyImage against the real docker-registry (fetch referrers tag, bundle, .att) for a
 *    smaller sample, to show what IO adds. Skipped when `docker-registry` is not installed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { buildProvenance } from '../builder/provenance/index.js';
import { signAndAttach, signStatement, type SigningKeyMaterial } from '../builder/sign/index.js';
import type { FetchedAttestations } from '../lib/attest/index.js';
import { canonicalJson, computeDigest, MEDIA_TYPES, openImageStore, pushImage, type ImageStore } from '../lib/oci/index.js';
import { VerificationCache, verifyAttestations, verifyImage } from '../lib/provenance/index.js';
import type { TrustPolicy } from '../schemas/index.js';

const COUNT = Number(process.argv[2] ?? 1000);
const E2E_COUNT = Math.min(COUNT, 100);
const NOW = new Date('2026-11-23T12:00:00Z');

const pair = generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
const key: SigningKeyMaterial = { name: 'release', privateKeyPem: pair.privateKey, publicKeyPem: pair.publicKey };
const policy: TrustPolicy = {
  keys: [{ name: 'release', publicKey: 'keys/release.pub' }],
  builders: ['https://slipway.dev/builder/v1'],
  sources: [{ repo: 'https://git.example/acme/*', branches: ['main'] }],
};
const publicKeys = { release: key.publicKeyPem };

function statementFor(digest: string, name = 'bench.example/acme/web') {
  return buildProvenance({
    image: { name, digest },
    source: { repo: 'https://git.example/acme/web', ref: 'refs/heads/main', commit: randomBytes(20).toString('hex') },
    pipelinePath: '.slipway/pipeline.yaml',
    startedOn: '2026-11-23T10:00:00Z',
    finishedOn: '2026-11-23T10:01:00Z',
    builderVersion: '0.1.0',
  });
}

function perOp(ms: number, n: number): string {
  return `${((ms / n) * 1000).toFixed(1)} µs`;
}

async function core(): Promise<{ coldMs: number; warmMs: number }> {
  const fetched: FetchedAttestations[] = [];
  for (let i = 0; i < COUNT; i++) {
    const digest = computeDigest(`image ${i} ${randomBytes(8).toString('hex')}`);
    const signed = await signStatement(statementFor(digest), { mode: 'key', key });
    fetched.push({ digest, referrersVia: 'tag', problems: [], attestations: [{ origin: `referrer ${i}`, via: 'referrer', bundle: JSON.parse(JSON.stringify(signed.bundle)) }] });
  }
  // One verification first, so module loading and the per-policy key parsing are not billed to the first digest.
  verifyAttestations(fetched[0]!, { repository: 'r', digest: fetched[0]!.digest, service: 'web', policy, publicKeys, now: NOW });

  let start = performance.now();
  for (const f of fetched) {
    const result = verifyAttestations(f, { repository: 'bench.example/acme/web', digest: f.digest, service: 'web', policy, publicKeys, now: NOW });
    if (!result.ok) throw new Error(`bench attestation refused: ${result.code} ${result.message}`);
  }
  const coldMs = performance.now() - start;

  // Seed the cache through the real path (a store that serves the fetched attestation) and then time hits only.
  const cache2 = new VerificationCache();
  for (const f of fetched) {
    const serving = servingStore(f);
    const r = await verifyImage({ store: serving, repository: 'r', digest: f.digest, service: 'web', policy, publicKeys, now: NOW, cache: cache2 });
    if (!r.ok) throw new Error(`seed refused: ${r.code}`);
  }
  const trap = { repository: 'r', referrers: () => Promise.reject(new Error('cache miss reached the store')) } as unknown as ImageStore;
  start = performance.now();
  for (const f of fetched) {
    const r = await verifyImage({ store: trap, repository: 'r', digest: f.digest, service: 'web', policy, publicKeys, now: NOW, cache: cache2 });
    if (!r.ok) throw new Error('warm refused');
  }
  const warmMs = performance.now() - start;
  if (cache2.hits !== COUNT) throw new Error(`expected ${COUNT} cache hits, got ${cache2.hits}`);
  return { coldMs, warmMs };
}

/** An in-memory ImageStore holding exactly one referrer bundle for `f.digest` (no IO: isolates the cache path). */
function servingStore(f: FetchedAttestations): ImageStore {
  const bundle = Buffer.from(JSON.stringify(f.attestations[0]!.bundle));
  const bundleDigest = computeDigest(bundle);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.imageManifest,
      artifactType: MEDIA_TYPES.sigstoreBundle,
      config: { mediaType: MEDIA_TYPES.emptyJson, digest: computeDigest('{}'), size: 2 },
      layers: [{ mediaType: MEDIA_TYPES.sigstoreBundle, digest: bundleDigest, size: bundle.length }],
      subject: { mediaType: MEDIA_TYPES.imageManifest, digest: f.digest, size: 1 },
    }),
  );
  const manifestDigest = computeDigest(manifest);
  return {
    repository: 'memory',
    referrers: async () => [{ mediaType: MEDIA_TYPES.imageManifest, digest: manifestDigest, size: manifest.length, artifactType: MEDIA_TYPES.sigstoreBundle }],
    getManifest: async (ref: string) => (ref === manifestDigest ? { digest: manifestDigest, mediaType: MEDIA_TYPES.imageManifest, bytes: manifest } : undefined),
    getBlob: async () => bundle,
  } as unknown as ImageStore;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function endToEnd(): Promise<{ coldMs: number; warmMs: number; n: number } | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-bench-registry-'));
  const port = await freePort();
  const config = join(dir, 'config.yml');
  await writeFile(config, `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    child.once('spawn', () => resolve(true));
  });
  if (!spawned) {
    await rm(dir, { recursive: true, force: true });
    return undefined;
  }
  try {
    for (let i = 0; i < 200; i++) {
      const up = await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false);
      if (up) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const store = openImageStore(`127.0.0.1:${port}/acme/web`);
    const digests: string[] = [];
    for (let i = 0; i < E2E_COUNT; i++) {
      const config = Buffer.from(canonicalJson({ architecture: 'amd64', os: 'linux', config: { Labels: { n: String(i) } }, rootfs: { type: 'layers', diff_ids: [] } }));
      const manifest = Buffer.from(
        canonicalJson({ schemaVersion: 2, mediaType: MEDIA_TYPES.imageManifest, config: { mediaType: MEDIA_TYPES.imageConfig, digest: computeDigest(config), size: config.length }, layers: [] }),
      );
      const digest = await pushImage(store, { manifestBytes: manifest, blobs: [{ digest: computeDigest(config), bytes: config }] });
      await signAndAttach({ store, digest, key, statement: statementFor(digest, store.repository) });
      digests.push(digest);
    }
    const cache = new VerificationCache();
    let start = performance.now();
    for (const digest of digests) {
      const r = await verifyImage({ store, repository: store.repository, digest, service: 'web', policy, publicKeys, now: NOW, cache });
      if (!r.ok) throw new Error(`e2e refused: ${r.code} ${r.message}`);
    }
    const coldMs = performance.now() - start;
    start = performance.now();
    for (const digest of digests) await verifyImage({ store, repository: store.repository, digest, service: 'web', policy, publicKeys, now: NOW, cache });
    const warmMs = performance.now() - start;
    return { coldMs, warmMs, n: E2E_COUNT };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

/** verifyImage against an OCI layout directory holding `n` signed images (its referrers are found by scanning index.json). */
async function layout(n: number): Promise<{ coldMs: number; n: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-bench-layout-'));
  try {
    const store = openImageStore(`oci:${dir}`);
    const digests: string[] = [];
    for (let i = 0; i < n; i++) {
      const config = Buffer.from(canonicalJson({ architecture: 'amd64', os: 'linux', config: { Labels: { layout: String(i) } }, rootfs: { type: 'layers', diff_ids: [] } }));
      const manifest = Buffer.from(
        canonicalJson({ schemaVersion: 2, mediaType: MEDIA_TYPES.imageManifest, config: { mediaType: MEDIA_TYPES.imageConfig, digest: computeDigest(config), size: config.length }, layers: [] }),
      );
      const digest = await pushImage(store, { manifestBytes: manifest, blobs: [{ digest: computeDigest(config), bytes: config }] });
      await signAndAttach({ store, digest, key, statement: statementFor(digest, store.repository) });
      digests.push(digest);
    }
    const start = performance.now();
    for (const digest of digests) {
      const r = await verifyImage({ store, repository: store.repository, digest, service: 'web', policy, publicKeys, now: NOW });
      if (!r.ok) throw new Error(`layout refused: ${r.code} ${r.message}`);
    }
    return { coldMs: performance.now() - start, n };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const c = await core();
const e = await endToEnd();
const l = await layout(E2E_COUNT);
const lines = [
  `verify, ${COUNT} distinct attestations (Node ${process.version}, ${cpus().length} cores: ${cpus()[0]?.model ?? '?'})`,
  `  core cold (signature + policy, attestation in memory): ${perOp(c.coldMs, COUNT)} per verify  (target < 5 ms)`,
  `  warm (verifyImage answered by the cache):               ${perOp(c.warmMs, COUNT)} per verify  (target < 0.1 ms)`,
];
if (e) {
  lines.push(`  end to end cold against docker-registry (${e.n} images): ${perOp(e.coldMs, e.n)} per verify`);
  lines.push(`  end to end warm against docker-registry (${e.n} images): ${perOp(e.warmMs, e.n)} per verify`);
} else {
  lines.push('  end to end: skipped (docker-registry not installed)');
}
lines.push(`  end to end cold against an OCI layout holding ${l.n} signed images: ${perOp(l.coldMs, l.n)} per verify`);
process.stdout.write(`${lines.join('\n')}\n`);
