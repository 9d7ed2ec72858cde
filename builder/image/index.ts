/**
 * A byte-reproducible OCI image from a build output directory: one layer (see layer.ts), a config with
 * the pipeline's entrypoint/cmd/env/workingDir/exposed port and the source labels, a manifest, all as
 * canonical JSON (sorted keys, no whitespace). The context's contents land at the image's workingDir
 * (or / when none is set). Same inputs, same digest, on every run and machine.
 */
import { canonicalJson, computeDigest, MEDIA_TYPES, type BlobUpload, type ImageConfig, type ImageManifest, type ImageStore, type ImageToPush } from '../../lib/oci/index.js';
import { SlipwayError } from '../../lib/errors.js';
import type { ImageConfigSpec } from '../../schemas/index.js';
import { buildLayer, entriesOf, streamLayer, type LayerEntry, type StreamedLayer } from './layer.js';

export { imageEpoch } from './epoch.js';
export { closeBlockWorkers, prepareBlockWorkers as prepareImageBuild, type ExpectedLayer } from './workers.js';
export { collectEntries, entriesOf, buildLayer, streamLayer, gzipFixed, GZIP_LEVEL, BLOCK_BYTES, type LayerEntry, type BuiltLayer, type StreamedLayer, type LayerSink } from './layer.js';

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
   * Stores to write the layer to while it is compressed (those that take a streamed upload: a registry,
   * an OCI layout). pushImage then finds the blob there. When every one of them takes it, the layer's
   * bytes are not kept (`blobs` has none for it) and its block buffers go round, so a layer of any
   * size is made in a few MiB. Best effort: if a streamed upload fails, the layer is made again and
   * kept (the same bytes: the build is reproducible), and pushImage uploads it the ordinary way, with
   * its retries and errors.
   */
  uploadTo?: ImageStore | ImageStore[];
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
  const stores = opts.uploadTo === undefined ? [] : [opts.uploadTo].flat();
  // Upload sessions open while the context is listed.
  const uploads = Promise.all(stores.map((s) => s.startBlobUpload?.().catch(() => undefined)));
  // Listed as the layer is made (a context that is not there fails here, before a byte is sent).
  const listEntries = () => entriesOf(opts.contextDir, workingDir.replace(/^\/+|\/+$/g, ''));
  let entries: Iterable<LayerEntry>;
  try {
    entries = await listEntries();
  } catch (err) {
    await Promise.all((await uploads).map((u) => u?.abort().catch(() => undefined)));
    throw err;
  }
  // The config names the layer's diff_id only: it is uploaded while the stores finish taking the layer.
  let configured: { config: ImageConfig; configBytes: Buffer; configDigest: string } | undefined;
  const configStoredIn: ImageStore[] = [];
  // Not awaited: the layer is being made while the sessions open (its first chunks wait for them).
  const { layer, bytes: layerBytes, storedIn: layerStoredIn } = await layerUploading(entries, listEntries, opts.epoch, stores, uploads, async (made) => {
    configured = imageConfig(opts, workingDir, made.diffId);
    const { configBytes, configDigest } = configured;
    // Best effort: pushImage uploads whatever is missing, with its retries and errors.
    await Promise.all(stores.map((s) => s.putBlob(configDigest, configBytes).then(() => void configStoredIn.push(s), () => undefined)));
  });
  const { config, configBytes, configDigest } = configured ?? imageConfig(opts, workingDir, layer.diffId);
  const created = createdOf(opts.epoch);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.imageManifest,
    config: { mediaType: MEDIA_TYPES.imageConfig, digest: configDigest, size: configBytes.length },
    layers: [{ mediaType: MEDIA_TYPES.layerTarGzip, digest: layer.digest, size: layer.size }],
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
      { digest: configDigest, bytes: configBytes, storedIn: configured ? configStoredIn : [] },
      { digest: layer.digest, ...(layerBytes ? { bytes: layerBytes } : {}), storedIn: layerStoredIn },
    ],
    layer: { digest: layer.digest, diffId: layer.diffId, size: layer.size, tarSize: layer.tarSize, files: layer.files },
  };
}

/** The image's `created` time: the epoch, to the second. */
function createdOf(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/** The image config (canonical JSON) for a layer with this diff_id. */
function imageConfig(opts: BuildImageOptions, workingDir: string, diffId: string): { config: ImageConfig; configBytes: Buffer; configDigest: string } {
  const created = createdOf(opts.epoch);
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
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created, created_by: `slipway build (context ${opts.spec.context})` }],
  };
  const configBytes = Buffer.from(canonicalJson(config));
  return { config, configBytes, configDigest: computeDigest(configBytes) };
}

/**
 * The layer, written through the uploads opened (one per store that takes a streamed upload; undefined
 * for the others) while it is compressed. Its bytes come back only when some store still needs them
 * (one that takes no stream, or an upload that failed).
 */
async function layerUploading(
  entries: Iterable<LayerEntry>,
  /** Lists the entries again, for a layer made a second time. */
  listAgain: () => Promise<Iterable<LayerEntry>>,
  epoch: number,
  stores: ImageStore[],
  /** One upload per store, undefined where the store takes no stream or its session did not open. */
  opening: Promise<(BlobUpload | undefined)[]>,
  whileFinishing: (layer: StreamedLayer) => Promise<void>,
): Promise<{ layer: StreamedLayer; bytes?: Buffer; storedIn: ImageStore[] }> {
  const live = new Set<BlobUpload>();
  const storeOf = new Map<BlobUpload, ImageStore>();
  const opened = opening.then((uploads) =>
    uploads.forEach((u, i) => {
      if (!u) return;
      live.add(u);
      storeOf.set(u, stores[i]!);
    }),
  );
  const drop = (upload: BlobUpload) => {
    live.delete(upload);
    return upload.abort().catch(() => undefined);
  };
  // Chunks made before the sessions are open wait for them, in order (each continuation runs in the order it was queued).
  const everyUpload = (chunk: Buffer) =>
    opened
      .then(() => Promise.all([...live].map((u) => u.write(chunk).catch(() => void drop(u)))))
      .then(() => {
        if (live.size === 0) throw new AllUploadsFailed();
      });
  // Streamed and not kept when every store takes a stream; a session that then fails to open is a store
  // that missed the blob (below: the layer is made again, kept).
  const keep = stores.length === 0 || stores.some((s) => !s.startBlobUpload);
  let layer: StreamedLayer;
  let bytes: Buffer | undefined;
  try {
    if (keep) {
      const built = await buildLayer(entries, epoch, stores.some((s) => s.startBlobUpload) ? everyUpload : undefined);
      layer = built;
      bytes = built.bytes;
    } else {
      layer = await streamLayer(entries, epoch, everyUpload);
    }
  } catch (err) {
    // Nothing of a failed layer stays behind as an upload.
    await opened;
    await Promise.all([...live].map(drop));
    if (!(err instanceof AllUploadsFailed)) throw err;
    const built = await buildLayer(await listAgain(), epoch);
    return { layer: built, bytes: built.bytes, storedIn: [] };
  }
  await opened;
  const finishing = [...live];
  const [finished] = await Promise.all([Promise.all(finishing.map((u) => u.finish(layer.digest, layer.size).then(() => true, () => false))), whileFinishing(layer)]);
  const storedIn = finishing.filter((_, i) => finished[i]).map((u) => storeOf.get(u)!);
  if (bytes || storedIn.length === stores.length) return { layer, ...(bytes ? { bytes } : {}), storedIn };
  // A store missed the blob and the bytes were not kept: make them again (the same bytes: the build is reproducible).
  const again = await buildLayer(await listAgain(), epoch);
  if (again.digest !== layer.digest) {
    throw new SlipwayError('IMAGE_CONTEXT_CHANGED', `the image context changed while the image was built (the layer came out as ${layer.digest}, then as ${again.digest}); nothing may write to it after the build stage`, 'stalling', { first: layer.digest, second: again.digest });
  }
  return { layer, bytes: again.bytes, storedIn };
}

/** Every streamed upload of the layer failed: it is made again, kept, and pushed the ordinary way. */
class AllUploadsFailed extends Error {
  constructor() {
    super('every streamed upload of the layer failed');
  }
}
