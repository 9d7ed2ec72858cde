/** OCI images: stores (layout directory, distribution registry), digests, push/pull, unpacking. */
export * from './types.js';
export { computeDigest, isDigest, assertDigest, verifyDigest, canonicalJson, parseImageRef, formatImageRef, type ImageRef } from './digest.js';
export { openImageStore, type OpenStoreOptions } from './store.js';
export { OciLayoutStore, REF_NAME_ANNOTATION } from './layout.js';
export { probeManifest, type ManifestPresence } from './probe.js';
export { RegistryStore, isLoopback, parseRegistryRepository, parseWwwAuthenticate, retryAfterMs, type RegistryOptions, type RegistryCredentials } from './registry.js';
export {
  pushImage,
  pullImage,
  unpackLayers,
  jsonBlob,
  type ImageConfig,
  type PulledImage,
  type PulledLayer,
  type ImageToPush,
  type UnpackOptions,
} from './image.js';
export { acquireFileLock, withFileLock, type FileLock, type LockOptions } from './lock.js';
