/** Provenance the builder writes for every image it pushes. */
export { buildProvenance, statementBytes } from './statement.js';
export type { BuildDescription, ImageReference } from './statement.js';
export { describeBuild } from './from-build.js';
export type { BuildFacts } from './from-build.js';
export {
  DEFAULT_BUILDER_ID,
  IN_TOTO_PAYLOAD_TYPE,
  IN_TOTO_STATEMENT_V1,
  SLIPWAY_BUILD_TYPE,
  SLSA_PROVENANCE_V1,
} from '../../lib/provenance/index.js';
export type { ProvenanceStatement } from '../../lib/provenance/index.js';
