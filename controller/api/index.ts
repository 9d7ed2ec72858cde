/** The controller's HTTP API (status, promote, webhook, metrics). */
export { ApiServer, verifyGithubSignature, type ApiOptions, type PipelineService } from './server.js';
