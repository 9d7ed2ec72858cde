// Load from outside the test process: sends <total> GETs with <concurrency> keep-alive connections to <url> and
// prints {"<version>": count, ...} from the answering instances' JSON bodies (plus "status:<code>" for non-200s).
// Usage: node count-versions.mjs <url> <total> <concurrency>
import http from 'node:http';
const [url, total, concurrency] = process.argv.slice(2);
const target = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });
const counts = {};
let sent = 0;
const one = () =>
  new Promise((resolve, reject) => {
    const req = http.request({ host: target.hostname, port: target.port, path: target.pathname, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const key = res.statusCode === 200 ? JSON.parse(Buffer.concat(chunks).toString()).version : `status:${res.statusCode}`;
        counts[key] = (counts[key] || 0) + 1;
        resolve();
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
const worker = async () => {
  while (sent < Number(total)) {
    sent++;
    await one();
  }
};
Promise.all(Array.from({ length: Number(concurrency) }, worker)).then(
  () => {
    process.stdout.write(JSON.stringify(counts) + '\n');
    agent.destroy();
  },
  (err) => {
    process.stderr.write(String(err) + '\n');
    process.exit(1);
  },
);
