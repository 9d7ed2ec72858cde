/** Shared plumbing for the local target's tests: a target on a temp SLIPWAY_HOME, HTTP calls, polling. */
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openImageStore, type ImageStore } from '../../../../lib/oci/index.js';
import { createLocalTarget, type LocalTarget, type LocalTargetOptions } from '../../../../controller/targets/local/index.js';
import type { TrackSpec } from '../../../../controller/targets/types.js';
import { freePort } from '../../../support/registry.js';
import { pushServiceImage, type ServiceImage } from './service-image.js';

export interface Harness {
  home: string;
  store: ImageStore;
  target: LocalTarget;
  v1: ServiceImage;
  v2: ServiceImage;
  proxyPort: number;
  spec(image: ServiceImage, extra?: Partial<TrackSpec>): TrackSpec;
  dispose(): Promise<void>;
}

export async function startHarness(options: Partial<LocalTargetOptions> = {}): Promise<Harness> {
  const home = await mkdtemp(join(tmpdir(), 'slipway-local-'));
  const store = openImageStore(`oci:${join(home, 'store')}`);
  const v1 = await pushServiceImage(store, 'v1');
  const v2 = await pushServiceImage(store, 'v2');
  const target = createLocalTarget({
    home: join(home, 'slipway'),
    openStore: (repository) => openImageStore(repository),
    restart: { initialBackoffMs: 100, maxBackoffMs: 400 },
    health: { startupProbeMs: 30, probeIntervalMs: 100, probeTimeoutMs: 1000, failureThreshold: 2 },
    readyDeadlineMs: 20_000,
    stopGraceMs: 2_000,
    baseEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    ...options,
  });
  const proxyPort = await freePort();
  return {
    home,
    store,
    target,
    v1,
    v2,
    proxyPort,
    spec: (image, extra = {}) => ({
      repository: image.repository,
      digest: image.digest,
      replicas: 1,
      port: 8080,
      healthPath: '/healthz',
      env: {},
      proxyPort,
      ...extra,
    }),
    async dispose() {
      await target.close();
      await rm(home, { recursive: true, force: true });
    },
  };
}

export const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function get(port: number, path = '/', headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends `total` requests with `concurrency` in flight, returning every reply. */
export async function load(port: number, total: number, concurrency: number, headers: Record<string, string> = {}): Promise<Reply[]> {
  const replies: Reply[] = [];
  let sent = 0;
  const worker = async () => {
    while (sent < total) {
      sent++;
      replies.push(await get(port, '/', headers));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return replies;
}

/** Polls until `check` returns a value (not undefined/false); fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether a fresh TCP connection to the port is refused (nothing listens there any more). */
export function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}
