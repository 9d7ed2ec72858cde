/**
 * Identifies the builder in cache keys and provenance. Bump IMAGE_FORMAT whenever the bytes an image
 * is made of change for the same inputs (layer layout, config fields, gzip settings), so old cache
 * entries are not returned for the new format.
 */
export const IMAGE_FORMAT = 5;
export const BUILDER_VERSION = `slipway-builder/0.1.0+image.${IMAGE_FORMAT}`;
/** The SLSA builder id the provenance names. */
export const BUILDER_ID = 'https://slipway.dev/builder/v1';
