/**
 * The outside observer for bench/rollback-e2e.ts, in its own process so it does not share the controller's event
 * loop: steady GET traffic through the service's proxy (so the canary has requests to be judged on and the proxy's
 * request log shows where each request went), and a watch on the environments repo's main ref.
 * Prints "ref <epoch ms> <sha>" whenever main moves, "ready" once both run. Exits when stdin closes.
 * Usage: node bench/rollback-watch.mjs <proxy url> <repo dir> <concurrency> <pause ms between requests>
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';

const [url, repo, concurrencyArg = '4', pauseArg = '2'] = process.argv.slice(2);
const target = new URL(url);
const agent = new Agent({ keepAlive: true, maxSockets: Number(concurrencyArg) });
const now = () => performance.timeOrigin + performance.now();
let stopped = false;

function get() {
  return new Promise((resolve) => {
    const req = request({ host: target.hostname, port: target.port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', resolve);
      res.on('error', resolve);
    });
    req.setTimeout(5000, () => req.destroy());
    req.on('error', resolve);
    req.end();
  });
}

async function worker() {
  while (!stopped) {
    await get();
    await new Promise((r) => setTimeout(r, Number(pauseArg)));
  }
}

function readMain() {
  try {
    return readFileSync(join(repo, '.git', 'refs', 'heads', 'main'), 'utf8').trim();
  } catch {
    // Packed (or being replaced this instant): the packed-refs line, else unknown for now.
    try {
      const line = readFileSync(join(repo, '.git', 'packed-refs'), 'utf8').split('\n').find((l) => l.endsWith(' refs/heads/main'));
      return line ? line.split(' ')[0] : undefined;
    } catch {
      return undefined;
    }
  }
}

let main = readMain();
process.stdout.write(`ref ${now().toFixed(1)} ${main}\n`);
const watch = setInterval(() => {
  const current = readMain();
  if (current && current !== main) {
    main = current;
    process.stdout.write(`ref ${now().toFixed(1)} ${current}\n`);
  }
}, 2);
const workers = Array.from({ length: Number(concurrencyArg) }, worker);
process.stdout.write('ready\n');
process.stdin.resume();
process.stdin.on('end', async () => {
  stopped = true;
  clearInterval(watch);
  await Promise.all(workers);
  agent.destroy();
  process.exit(0);
});
