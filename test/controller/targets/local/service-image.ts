/**
 * A real OCI image of a tiny HTTP service (a Node script under /app), pushed to a store, for the local target's
 * tests and the proxy benchmark. Its behaviour is steered by environment variables the TrackSpec passes:
 *   FAIL_STATUS=500      every non-health request answers 500
 *   HEALTH_DIR=<dir>     /healthz answers 503 while the file <dir>/<PORT> exists
 *   NEVER_HEALTHY=1      /healthz always answers 503
 *   EXIT_AT_START=<code> writes a line to stderr and exits at once (a crash loop)
 *   TERM_EXITS_AT_ONCE=1 exits on SIGTERM without finishing requests under way (as Node does by default)
 * GET /crash exits with code 3; GET /slow answers after 400 ms; every other request is logged to stdout ("served GET /") and answered with JSON
 * naming the instance (track, version, pid, port).
 */
import { canonicalJson, computeDigest, MEDIA_TYPES, pushImage, type ImageStore } from '../../../../lib/oci/index.js';
import { tarGz } from '../../../support/images.js';

const SERVER = `
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
if (process.env.EXIT_AT_START) {
  console.error('fatal: cannot open the database (EXIT_AT_START)');
  process.exit(Number(process.env.EXIT_AT_START));
}
const port = Number(process.env.PORT);
const me = { track: process.env.SLIPWAY_TRACK, version: process.env.VERSION, pid: process.pid, port };
const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    const failing = process.env.NEVER_HEALTHY === '1' ||
      (process.env.HEALTH_DIR && fs.existsSync(path.join(process.env.HEALTH_DIR, String(port))));
    res.writeHead(failing ? 503 : 200, { 'content-type': 'text/plain' });
    res.end(failing ? 'unhealthy\\n' : 'ok\\n');
    return;
  }
  console.log('served ' + req.method + ' ' + req.url);
  if (req.url === '/crash') {
    res.end('bye\\n', () => process.exit(3));
    return;
  }
  const status = Number(process.env.FAIL_STATUS || 200);
  const body = JSON.stringify(me);
  const answer = () => {
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  if (req.url === '/slow') setTimeout(answer, 400);
  else answer();
});
server.keepAliveTimeout = 30000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => (process.env.TERM_EXITS_AT_ONCE === '1' ? process.exit(0) : server.close(() => process.exit(0))));
`;

export interface ServiceImage {
  digest: string;
  repository: string;
}

/** Builds and pushes the service image; `version` goes into the image env (so two versions have two digests). */
export async function pushServiceImage(store: ImageStore, version: string): Promise<ServiceImage> {
  const layer = await tarGz([
    { name: 'app/', type: 'directory' },
    { name: 'app/server.cjs', body: SERVER, mode: 0o644 },
  ]);
  const layerDigest = computeDigest(layer);
  const { gunzipSync } = await import('node:zlib');
  const config = Buffer.from(
    canonicalJson({
      architecture: 'amd64',
      os: 'linux',
      config: { Entrypoint: ['node'], Cmd: ['/app/server.cjs'], Env: [`VERSION=${version}`, 'PATH=/usr/bin'], WorkingDir: '/app' },
      rootfs: { type: 'layers', diff_ids: [computeDigest(gunzipSync(layer))] },
    }),
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
  const digest = await pushImage(store, {
    manifestBytes: manifest,
    mediaType: MEDIA_TYPES.imageManifest,
    blobs: [
      { digest: configDigest, bytes: config },
      { digest: layerDigest, bytes: layer },
    ],
  });
  return { digest, repository: store.repository };
}
