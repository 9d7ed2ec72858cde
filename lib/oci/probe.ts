/**
 * Does a registry hold a manifest? One HEAD request on node:http(s), for answers that must come fast
 * (a build cache hit): Node's fetch costs a few hundred milliseconds to load on first use, more than
 * the whole answer may take. Only a clear 200 (with a matching Docker-Content-Digest when the registry
 * sends one) or 404 counts; anything else (an auth challenge, a redirect, an error, a timeout) is
 * `unknown`, and the caller goes the long way through RegistryStore, which handles all of those.
 */
import type { IncomingMessage } from 'node:http';
import { assertDigest } from './digest.js';
import { isLoopback, parseRegistryRepository, type RegistryOptions } from './registry.js';
import { MEDIA_TYPES } from './types.js';

export type ManifestPresence = 'present' | 'absent' | 'unknown';

const ACCEPT = [MEDIA_TYPES.imageManifest, MEDIA_TYPES.imageIndex, 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

export async function probeManifest(repository: string, digest: string, opts: Pick<RegistryOptions, 'plainHttp' | 'credentials' | 'env' | 'timeoutMs'> = {}): Promise<ManifestPresence> {
  assertDigest(digest);
  const { host, name } = parseRegistryRepository(repository);
  const plain = opts.plainHttp ?? isLoopback(host);
  const env = opts.env ?? process.env;
  const credentials = opts.credentials ?? (env.SLIPWAY_REGISTRY_USERNAME ? { username: env.SLIPWAY_REGISTRY_USERNAME, password: env.SLIPWAY_REGISTRY_PASSWORD ?? '' } : undefined);
  const url = new URL(`${plain ? 'http' : 'https'}://${host}/v2/${name}/manifests/${digest}`);
  const headers: Record<string, string> = { accept: ACCEPT };
  // Basic is sent up front (a Bearer registry answers 401 to it, and the caller takes the long way).
  if (credentials) headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  // Loaded on use: node:https brings TLS, which every user of this package would otherwise pay for at start.
  const { request: send } = plain ? await import('node:http') : await import('node:https');
  return new Promise<ManifestPresence>((resolve) => {
    // No keep-alive agent: a pooled socket would hold the process open after the answer.
    const req = send(url, { method: 'HEAD', headers, agent: false, timeout: opts.timeoutMs ?? 10_000 }, (res: IncomingMessage) => {
      res.resume();
      const stored = res.headers['docker-content-digest'];
      if (res.statusCode === 200) resolve(stored === undefined || stored === digest ? 'present' : 'unknown');
      else if (res.statusCode === 404) resolve('absent');
      else resolve('unknown');
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve('unknown'));
    req.end();
  });
}
