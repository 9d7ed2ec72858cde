/** OCI image-spec shapes and the store port (an OCI layout directory or a distribution registry). */

export const MEDIA_TYPES = {
  imageManifest: 'application/vnd.oci.image.manifest.v1+json',
  imageIndex: 'application/vnd.oci.image.index.v1+json',
  imageConfig: 'application/vnd.oci.image.config.v1+json',
  layerTarGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  emptyJson: 'application/vnd.oci.empty.v1+json',
  dsseEnvelope: 'application/vnd.dsse.envelope.v1+json',
  sigstoreBundle: 'application/vnd.dev.sigstore.bundle.v0.3+json',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface FetchedManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

/** A blob upload in progress (ImageStore.startBlobUpload). */
export interface BlobUpload {
  /** Sends the next chunk; resolves once the chunk's memory may be reused (it has been handed to the OS). */
  write(chunk: Uint8Array): Promise<void>;
  /** After the last chunk: commits the blob under `digest` (the store checks it); `size` is the total length. */
  finish(digest: string, size: number): Promise<void>;
  /** Gives up; nothing of the upload remains that counts as a blob. */
  abort(): Promise<void>;
}

/**
 * Where images live. Every read is checked against its digest; a mismatch is refused.
 * `repository` is the user-facing name: `host:port/name` or `oci:<path>`.
 */
export interface ImageStore {
  readonly repository: string;
  hasBlob(digest: string): Promise<boolean>;
  putBlob(digest: string, data: Uint8Array): Promise<void>;
  getBlob(digest: string): Promise<Buffer>;
  /**
   * Optional: upload a blob while it is still being made (a layer being compressed). Chunks go in order
   * through `write`, then `finish` names the digest, which the store checks the bytes against. Nothing
   * counts as the blob until `finish` resolves; after a rejection (or `abort`) the caller can fall back
   * to putBlob.
   */
  startBlobUpload?(): Promise<BlobUpload>;
  /** Stores a manifest (by digest, and under `tag` when given); returns its digest. */
  putManifest(bytes: Uint8Array, mediaType: string, tag?: string): Promise<string>;
  /** A manifest by digest or tag; undefined when absent. */
  getManifest(reference: string): Promise<FetchedManifest | undefined>;
  listTags(): Promise<string[]>;
  /** Referrers of a digest (OCI 1.1); undefined when the store has no referrers API. */
  referrers(digest: string, artifactType?: string): Promise<Descriptor[] | undefined>;
}
