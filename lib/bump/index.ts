/** Digest bump: edit `spec.image.digest` of a service file in place; create a file from the template. */
export {
  assertDigest,
  bumpDigest,
  readDigest,
  readRepository,
  SHA256_DIGEST,
  type BumpRequest,
  type BumpResult,
  type BumpStatus,
} from './digest.js';
export { createServiceFile, SERVICE_TEMPLATE_PATH, type NewService } from './template.js';
