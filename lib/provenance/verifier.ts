/**
 * The real implementation of the controller's ProvenanceVerifier port: `verify(VerifyRequest)` opens the store
 * the request names (once per repository) and verifies with one shared cache, so a digest that is already
 * running costs a map lookup on every reconcile.
 */
import { openImageStore, type ImageStore, type OpenStoreOptions } from '../oci/index.js';
import { VerificationCache } from './cache.js';
import type { VerificationResult, VerifyRequest } from './types.js';
import { verifyImage } from './verify.js';

export interface ProvenanceVerifierOptions {
  /** Default: `openImageStore(repository, storeOptions)`. */
  openStore?: (repository: string) => ImageStore;
  storeOptions?: OpenStoreOptions;
  /** Default: a new in-memory cache; `false` verifies every time. */
  cache?: VerificationCache | false;
}

export interface ImageProvenanceVerifier {
  verify(request: VerifyRequest): Promise<VerificationResult>;
  readonly cache: VerificationCache | undefined;
}

export function createProvenanceVerifier(options: ProvenanceVerifierOptions = {}): ImageProvenanceVerifier {
  const open = options.openStore ?? ((repository: string) => openImageStore(repository, options.storeOptions));
  const cache = options.cache === false ? undefined : (options.cache ?? new VerificationCache());
  const stores = new Map<string, ImageStore>();
  return {
    cache,
    verify(request) {
      let store = stores.get(request.repository);
      if (!store) {
        store = open(request.repository);
        stores.set(request.repository, store);
      }
      return verifyImage({ ...request, store, cache });
    },
  };
}
