import { isAbsolute, resolve } from 'node:path';
import { OciLayoutStore } from './layout.js';
import { RegistryStore, type RegistryOptions } from './registry.js';
import type { ImageStore } from './types.js';

export type OpenStoreOptions = RegistryOptions & { cwd?: string };

/**
 * `oci:<path>` opens an OCI image layout directory (created on first write); anything else is a
 * distribution registry repository `host[:port]/name`.
 */
export function openImageStore(repository: string, opts: OpenStoreOptions = {}): ImageStore {
  if (repository.startsWith('oci:')) {
    const path = repository.slice(4);
    return new OciLayoutStore(isAbsolute(path) ? path : resolve(opts.cwd ?? process.cwd(), path));
  }
  return new RegistryStore(repository, opts);
}
