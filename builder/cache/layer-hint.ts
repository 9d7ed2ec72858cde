/**
 * How large the last image of a service came out (files and tar bytes of its layer), kept beside the
 * build cache: the next build of the same service prepares the layer builder to that measure while its
 * stages run (builder/image prepareImageBuild: worker threads and warm-ups only for a layer that needs
 * them). A hint, not a record: missing, unreadable or stale, the build only prepares less well.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExpectedLayer } from '../image/index.js';

/** A service: its source URL and pipeline name. */
export function layerHintPath(cacheRoot: string, service: { sourceUrl: string; pipeline: string }): string {
  const id = createHash('sha256').update(`${service.sourceUrl}\0${service.pipeline}`).digest('hex').slice(0, 32);
  return join(cacheRoot, 'layer-hints', `${id}.json`);
}

export async function readLayerHint(path: string): Promise<ExpectedLayer | undefined> {
  try {
    const hint = JSON.parse(await readFile(path, 'utf8')) as Partial<ExpectedLayer>;
    if (Number.isSafeInteger(hint.files) && Number.isSafeInteger(hint.tarBytes) && hint.files! >= 0 && hint.tarBytes! >= 0) return { files: hint.files!, tarBytes: hint.tarBytes! };
  } catch {
    /* no hint */
  }
  return undefined;
}

/** Best effort: a hint that cannot be written costs the next build a little preparation, never the build. */
export async function writeLayerHint(path: string, layer: ExpectedLayer): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(temp, JSON.stringify({ files: layer.files, tarBytes: layer.tarBytes }));
    await rename(temp, path);
  } catch {
    await unlink(temp).catch(() => undefined); // ignored otherwise: see above
  }
}
