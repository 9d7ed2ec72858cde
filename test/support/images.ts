/** Small real images for tests: a gzip tar layer made with tar-stream, a config, a manifest. */
import { gzipSync, gunzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { canonicalJson, computeDigest, MEDIA_TYPES, type ImageToPush } from '../../lib/oci/index.js';

export interface TarEntry {
  name: string;
  body?: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  linkname?: string;
  mode?: number;
}

export async function tarGz(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = { name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), mtime: new Date(0), linkname: e.linkname };
    const done = (err?: Error | null) => (err ? Promise.reject(err) : Promise.resolve());
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => void done(err).then(resolve, reject);
      if (type === 'file') pack.entry(header, e.body ?? '', cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await collected;
  return gzipSync(Buffer.concat(chunks));
}

export async function smallImage(entries: TarEntry[] = [{ name: 'hello.txt', body: 'hello\n' }], label = 'test'): Promise<ImageToPush & { digest: string; layerDigest: string; configDigest: string }> {
  const layer = await tarGz(entries);
  const layerDigest = computeDigest(layer);
  const config = Buffer.from(
    canonicalJson({ architecture: 'amd64', os: 'linux', config: { Labels: { test: label } }, rootfs: { type: 'layers', diff_ids: [computeDigest(tar2(layer))] } }),
  );
  const configDigest = computeDigest(config);
  const manifest = Buffer.from(
    canonicalJson({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.imageManifest,
      config: { mediaType: MEDIA_TYPES.imageConfig, digest: configDigest, size: config.length },
      layers: [{ mediaType: MEDIA_TYPES.layerTarGzip, digest: layerDigest, size: layer.length }],
    }),
  );
  return {
    manifestBytes: manifest,
    mediaType: MEDIA_TYPES.imageManifest,
    blobs: [
      { digest: configDigest, bytes: config },
      { digest: layerDigest, bytes: layer },
    ],
    digest: computeDigest(manifest),
    layerDigest,
    configDigest,
  };
}


function tar2(gz: Buffer): Buffer {
  return gunzipSync(gz);
}
