// hello: the sample Slipway service. A plain Node HTTP server with no dependencies.
//   PORT                 port to listen on (default 8080; 0 picks a free one and prints it)
//   HELLO_VERSION        overrides the version answered (default: version in package.json)
//   HELLO_ERROR_RATE     share of requests (0..1) answered with HTTP 500, spread evenly, so a bad canary can be shown
//   HELLO_LATENCY_MS     extra latency added to every request
import { createServer } from 'node:http';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const version = process.env.HELLO_VERSION || pkg.version;
const errorRate = Math.min(1, Math.max(0, Number(process.env.HELLO_ERROR_RATE ?? 0) || 0));
const latencyMs = Math.max(0, Number(process.env.HELLO_LATENCY_MS ?? 0) || 0);

let served = 0;
// Deterministic share: request n fails when floor(n * rate) steps up, so 0.25 fails exactly 1 in 4.
function shouldFail() {
  served += 1;
  return Math.floor(served * errorRate) > Math.floor((served - 1) * errorRate);
}

export function handler(req, res) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok\n');
    return;
  }
  const answer = () => {
    if (shouldFail()) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'injected failure', version }) + '\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-hello-version': version });
    res.end(JSON.stringify({ service: pkg.name, version, path: url.pathname }) + '\n');
  };
  if (latencyMs > 0) setTimeout(answer, latencyMs);
  else answer();
}

// Started as the main script (not imported by the tests).
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const server = createServer(handler);
  server.listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`hello ${version} listening on ${typeof address === 'object' && address ? address.port : address}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
