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
   * Optional: upload a blob while it is still being made (a layer being compressed). `digest` resolves
   * after the last chunk; the store checks the bytes against it. A rejection leaves nothing that counts
   * as the blob, so the caller can fall back to putBlob.
   */
  putBlobStream?(chunks: ReadableStream<Uint8Array>, digest: Promise<string>): Promise<void>;
  /** Stores a manifest (by digest, and under `tag` when given); returns its digest. */
  putManifest(bytes: Uint8Array, mediaType: string, tag?: string): Promise<string>;
  /** A manifest by digest or tag; undefined when absent. */
  getManifest(reference: string): Promise<FetchedManifest | undefined>;
  listTags(): Promise<string[]>;
  /** Referrers of a digest (OCI 1.1); undefined when the store has no referrers API. */
  referrers(digest: string, artifactType?: string): Promise<Descriptor[] | undefined>;
}
