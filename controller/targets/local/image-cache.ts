import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { isAbsolute, join, posix, resolve } from 'node:path';
import { SlipwayError } from '../../../lib/errors.js';
import { pullImage, unpackLayers, type ImageConfig, type ImageStore } from '../../../lib/oci/index.js';

/** The parts of an OCI image config that decide how a process starts. */
export type ImageRunConfig = NonNullable<ImageConfig['config']>;

export interface CachedImage {
  digest: string;
  /** The unpacked filesystem. */
  rootfs: string;
  config: ImageRunConfig;
}

const DIGEST = /^sha256:([a-f0-9]{64})$/;

/**
 * Unpacked images under `<dir>/sha256-<hex>/`, each made in a temp dir and renamed into place only after every
 * blob was checked, so a directory that exists is complete and can be reused across restarts.
 */
export class ImageCache {
  private readonly inflight = new Map<string, Promise<CachedImage>>();
  /** Digests whose unpacked tree running processes use (count of holders): never pruned. */
  private readonly leases = new Map<string, number>();

  constructor(readonly dir: string) {}

  /** `ensure`, plus a lease that keeps the unpacked image from being pruned until `release` is called. */
  async acquire(store: ImageStore, digest: string): Promise<{ image: CachedImage; release: () => void }> {
    this.leases.set(digest, (this.leases.get(digest) ?? 0) + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const left = (this.leases.get(digest) ?? 1) - 1;
      if (left > 0) this.leases.set(digest, left);
      else this.leases.delete(digest);
    };
    try {
      const image = await this.ensure(store, digest);
      // Recently used first when pruning: the mtime says when an image was last started.
      const now = new Date();
      await utimes(this.pathOf(digest), now, now).catch(() => undefined);
      return { image, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  /**
   * Removes unpacked images nothing runs, keeping the `keepUnused` most recently started ones (a rollback to
   * them then starts without a pull). Each goes by rename first, so no reader ever sees half a tree.
   */
  async prune(keepUnused: number): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const candidates: { name: string; digest: string; mtimeMs: number }[] = [];
    for (const name of names) {
      const match = /^sha256-([a-f0-9]{64})$/.exec(name);
      if (!match) continue;
      const digest = `sha256:${match[1]}`;
      if (this.leases.has(digest) || this.inflight.has(digest)) continue;
      const info = await stat(join(this.dir, name)).catch(() => undefined);
      if (info) candidates.push({ name, digest, mtimeMs: info.mtimeMs });
    }
    candidates.sort((a, b) => b.mtimeMs - a.mtimeMs);
    const removed: string[] = [];
    for (const { name, digest } of candidates.slice(Math.max(0, keepUnused))) {
      if (this.leases.has(digest) || this.inflight.has(digest)) continue;
      const trash = join(this.dir, `.tmp-prune-${process.pid}-${randomBytes(4).toString('hex')}`);
      try {
        await rename(join(this.dir, name), trash);
      } catch {
        continue;
      }
      await rm(trash, { recursive: true, force: true });
      removed.push(digest);
    }
    return removed;
  }

  pathOf(digest: string): string {
    return join(this.dir, `sha256-${hexOf(digest)}`);
  }

  async ensure(store: ImageStore, digest: string): Promise<CachedImage> {
    const running = this.inflight.get(digest);
    if (running) return running;
    const work = this.load(store, digest).finally(() => this.inflight.delete(digest));
    this.inflight.set(digest, work);
    return work;
  }

  /** Removes temp dirs left by a process that died mid-unpack. */
  async sweep(): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      const match = /^\.tmp-.*-(\d+)-[a-f0-9]+$/.exec(name);
      if (match && !isAlive(Number(match[1]))) await rm(join(this.dir, name), { recursive: true, force: true });
    }
  }

  private async load(store: ImageStore, digest: string): Promise<CachedImage> {
    const final = this.pathOf(digest);
    const cached = await readCached(final, digest);
    if (cached) return cached;
    // pullImage checks the manifest, the config and every layer against their digests and sizes.
    const image = await pullImage(store, digest);
    await mkdir(this.dir, { recursive: true });
    const temp = join(this.dir, `.tmp-sha256-${hexOf(digest)}-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await unpackLayers(image.layers, join(temp, 'rootfs'));
      const config = image.config.config ?? {};
      await writeFile(join(temp, 'image.json'), JSON.stringify({ digest, manifest: image.manifest, config }, null, 2));
      try {
        await rename(temp, final);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      }
    } finally {
      await rm(temp, { recursive: true, force: true });
    }
    const ready = await readCached(final, digest);
    if (!ready) throw new SlipwayError('IMAGE_CACHE_BROKEN', `unpacked image ${digest} vanished from ${final}`, 'generic');
    return ready;
  }
}

async function readCached(dir: string, digest: string): Promise<CachedImage | undefined> {
  const text = await readFile(join(dir, 'image.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const parsed = JSON.parse(text) as { config: ImageRunConfig };
  return { digest, rootfs: join(dir, 'rootfs'), config: parsed.config };
}

function hexOf(digest: string): string {
  const match = DIGEST.exec(digest);
  if (!match) {
    throw new SlipwayError('INVALID_DIGEST', `${JSON.stringify(digest)} is not a full sha256 digest (sha256:<64 hex>)`, 'stalling', { digest });
  }
  return match[1]!;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ProcessCommand {
  file: string;
  args: string[];
  cwd: string;
  /** The image's own environment (PATH dropped: the process runs on the host, so the host's PATH applies). */
  env: Record<string, string>;
}

/**
 * How the image's process starts on the host: Entrypoint + Cmd, run in WorkingDir inside the unpacked root.
 * An absolute path in the command that exists inside the image is mapped into the root; anything else (e.g.
 * `node`) is looked up on the host's PATH, since the local target runs processes, not containers.
 */
export function processCommand(image: CachedImage): ProcessCommand {
  const argv = [...(image.config.Entrypoint ?? []), ...(image.config.Cmd ?? [])];
  if (argv.length === 0) {
    throw new SlipwayError(
      'IMAGE_NO_COMMAND',
      `image ${image.digest} has neither Entrypoint nor Cmd in its config; the local target cannot tell what to run`,
      'stalling',
      { digest: image.digest },
    );
  }
  // posix.normalize of an absolute path drops every leading `..`, so a mapped path never leaves the root.
  const underRoot = (path: string) => resolve(image.rootfs, `.${posix.normalize(`/${path}`)}`);
  const inRoot = (arg: string) => (isAbsolute(arg) && existsSync(underRoot(arg)) ? underRoot(arg) : arg);
  const env: Record<string, string> = {};
  for (const entry of image.config.Env ?? []) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const name = entry.slice(0, eq);
    if (name !== 'PATH') env[name] = entry.slice(eq + 1);
  }
  return { file: inRoot(argv[0]!), args: argv.slice(1).map(inRoot), cwd: underRoot(image.config.WorkingDir || '/'), env };
}
