/**
 * Read-modify-write of a tag that several writers append to (`sha256-<hex>.att`, the `sha256-<hex>` referrers
 * index). A registry has no compare-and-swap for tags, so:
 * - writers in one process are serialized per (store, tag);
 * - writers sharing an OCI layout directory also take a lock file in it;
 * - every writer reads the tag back after writing and merges again if its entry was overwritten, up to a
 *   few times.
 * Against a registry, writers in different processes can still overwrite each other (measured: 3 processes
 * × 4 attaches to one digest at the same instant kept 6–8 of 12). What survives is safe: entries that were
 * there before the writers started are kept by all of them, and the last write always holds its writer's
 * attestation, so an image never ends up with none. cosign's tag-based attach has the same race.
 */
import { join } from 'node:path';
import { SlipwayError } from '../errors.js';
import { OciLayoutStore, withFileLock, type FetchedManifest, type ImageStore } from '../oci/index.js';

const chains = new Map<string, Promise<unknown>>();
const ATTEMPTS = 5;

export interface TagUpdate {
  store: ImageStore;
  tag: string;
  /** The manifest to write given what the tag holds now (undefined: nothing), or undefined when `present` already. */
  merge(existing: FetchedManifest | undefined): Promise<{ bytes: Buffer; mediaType: string } | undefined>;
  /** Whether what the tag holds includes this writer's entry. */
  present(fetched: FetchedManifest): boolean;
}

/** Returns the digest the tag points at once it includes this writer's entry. */
export function updateTag(update: TagUpdate): Promise<string> {
  const key = `${update.store.repository}\n${update.tag}`;
  const previous = chains.get(key) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => lockedIfLayout(update.store, () => mergeUntilPresent(update)));
  chains.set(key, run);
  void run.finally(() => {
    if (chains.get(key) === run) chains.delete(key);
  }).catch(() => undefined);
  return run;
}

async function lockedIfLayout<T>(store: ImageStore, fn: () => Promise<T>): Promise<T> {
  if (!(store instanceof OciLayoutStore)) return fn();
  return withFileLock(join(store.root, '.slipway-attach.lock'), fn, { timeoutMs: 60_000 });
}

async function mergeUntilPresent(update: TagUpdate): Promise<string> {
  const { store, tag } = update;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const existing = await store.getManifest(tag);
    if (existing && update.present(existing)) return existing.digest;
    const next = await update.merge(existing);
    if (!next) throw new Error(`internal: ${tag} lacks the entry but the merge wrote nothing`);
    await store.putManifest(next.bytes, next.mediaType, tag);
    const after = await store.getManifest(tag);
    if (after && update.present(after)) return after.digest;
  }
  throw new SlipwayError(
    'ATTACH_CONFLICT',
    `${store.repository}:${tag} kept changing under concurrent writers (${ATTEMPTS} attempts); attach again`,
    'waiting',
    { tag },
  );
}
