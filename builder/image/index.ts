/**
 * A byte-reproducible OCI image from a build output directory: one layer (see layer.ts), a config with
 * the pipeline's entrypoint/cmd/env/workingDir/exposed port and the source labels, a manifest, all as
 * canonical JSON (sorted keys, no whitespace). The context's contents land at the image's workingDir
 * (or / when none is set). Same inputs, same digest, on every run and machine.
 */
import { canonicalJson, computeDigest, MEDIA_TYPES, type ImageConfig, type ImageManifest, type ImageStore, type ImageToPush } from '../../lib/oci/index.js';
import type { ImageConfigSpec } from '../../schemas/index.js';
import { buildLayer, collectEntries, type BuiltLayer, type LayerEntry } from './layer.js';
import { warmUp as warmUpBlockWorkers } from './workers.js';

export { imageEpoch } from './epoch.js';
export { closeBlockWorkers } from './workers.js';
export { collectEntries, buildLayer, gzipFixed, GZIP_LEVEL, BLOCK_BYTES, type LayerEntry, type BuiltLayer, type LayerSink } from './layer.js';

export const LABEL_SOURCE = 'org.opencontainers.image.source';
export const LABEL_REVISION = 'org.opencontainers.image.revision';
export const LABEL_CREATED = 'org.opencontainers.image.created';

export interface BuildImageOptions {
  /** The build output directory (already resolved inside the checkout). */
  contextDir: string;
  spec: ImageConfigSpec;
  source: { url: string; revision: string };
  /** Seconds since the epoch: every file's mtime and the image's `created`. */
  epoch: number;
  /**
   * Start uploading the layer to this store while it is compressed (when the store can take a stream,
   * as a registry can). pushImage then finds the blob there. Best effort: if the streamed upload fails,
   * pushImage uploads the layer the ordinary way, with its retries and errors.
   */
  uploadTo?: ImageStore;
  /** The config's platform (default linux/amd64: fixed, so the digest does not depend on the build machine). */
  platform?: { os: string; architecture: string };
}

export interface BuiltImage extends ImageToPush {
  digest: string;
  manifest: ImageManifest;
  config: ImageConfig;
  configDigest: string;
  layer: { digest: string; diffId: string; size: number; tarSize: number; files: number };
}


export async function buildImage(opts: BuildImageOptions): Promise<BuiltImage> {
  const workingDir = opts.spec.workingDir ?? '/';
  const entries = await collectEntries(opts.contextDir, workingDir.replace(/^\/+|\/+$/g, ''), warmUpBlockWorkers);
  const layer = await buildLayerUploading(entries, opts.epoch, opts.uploadTo);
  const created = new Date(opts.epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');

  const labels: Record<string, string> = {
    ...(opts.spec.labels ?? {}),
    [LABEL_SOURCE]: opts.source.url,
    [LABEL_REVISION]: opts.source.revision,
    [LABEL_CREATED]: created,
  };
  const env = Object.entries(opts.spec.env ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
  const config: ImageConfig = {
    architecture: opts.platform?.architecture ?? 'amd64',
    os: opts.platform?.os ?? 'linux',
    created,
    config: {
      ...(opts.spec.entrypoint ? { Entrypoint: opts.spec.entrypoint } : {}),
      ...(opts.spec.cmd ? { Cmd: opts.spec.cmd } : {}),
      ...(env.length ? { Env: env } : {}),
      WorkingDir: workingDir,
      ...(opts.spec.exposedPort ? { ExposedPorts: { [`${opts.spec.exposedPort}/tcp`]: {} } } : {}),
      Labels: labels,
    },
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created, created_by: `slipway build (context ${opts.spec.context})` }],
  };
  const configBytes = Buffer.from(canonicalJson(config));
  const configDigest = computeDigest(configBytes);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.imageManifest,
    config: { mediaType: MEDIA_TYPES.imageConfig, digest: configDigest, size: configBytes.length },
    layers: [{ mediaType: MEDIA_TYPES.layerTarGzip, digest: layer.digest, size: layer.bytes.length }],
    annotations: { [LABEL_SOURCE]: opts.source.url, [LABEL_REVISION]: opts.source.revision, [LABEL_CREATED]: created },
  };
  const manifestBytes = Buffer.from(canonicalJson(manifest));
  return {
    digest: computeDigest(manifestBytes),
    manifest,
    manifestBytes,
    mediaType: MEDIA_TYPES.imageManifest,
    config,
    configDigest,
    blobs: [
      { digest: configDigest, bytes: configBytes },
      { digest: layer.digest, bytes: layer.bytes },
    ],
    layer: { digest: layer.digest, diffId: layer.diffId, size: layer.bytes.length, tarSize: layer.tarSize, files: layer.files },
  };
}

/** buildLayer, with the gzip bytes streamed to `store` as they come when it takes streamed uploads. */
async function buildLayerUploading(entries: LayerEntry[], epoch: number, store: ImageStore | undefined): Promise<BuiltLayer> {
  if (!store?.putBlobStream) return buildLayer(entries, epoch);
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  const stream = new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c;
    },
    cancel: () => {
      open = false;
    },
  });
  let digest!: { resolve: (d: string) => void; reject: (e: unknown) => void };
  const digestPromise = new Promise<string>((resolve, reject) => (digest = { resolve, reject }));
  digestPromise.catch(() => undefined);
  const upload = store.putBlobStream(stream, digestPromise).then(
    () => true,
    () => false, // pushImage uploads it again the ordinary way and reports what goes wrong there
  );
  let layer: BuiltLayer;
  try {
    layer = await buildLayer(entries, epoch, (chunk) => {
      if (!open) return;
      try {
        controller.enqueue(chunk);
      } catch {
        open = false; // the upload gave up on the stream; the layer is still built
      }
    });
  } catch (err) {
    if (open) {
      try {
        controller.error(err);
      } catch {
        /* already closed by the reader */
      }
    }
    digest.reject(err);
    await upload;
    throw err;
  }
  if (open) {
    try {
      controller.close();
    } catch {
      /* already closed by the reader */
    }
  }
  digest.resolve(layer.digest);
  await upload;
  return layer;
}
