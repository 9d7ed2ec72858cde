/** The controller's HTTP API (status, promote, webhook, metrics). */
export { ApiServer, verifyGithubSignature, type ApiOptions } from './server.js';
