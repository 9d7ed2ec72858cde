// Tests: start the handler on a free port and check /healthz, the version and the error switch.
// With SLIPWAY_SHARD_INDEX/SLIPWAY_SHARD_TOTAL set, runs only its share of the cases.
import { createServer } from 'node:http';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const { handler } = await import(new URL('../server.js', import.meta.url).href);
const server = createServer(handler);
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;

const cases = [
  ['healthz answers ok', async () => {
    const res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'ok\n');
  }],
  ['the root answers the version', async () => {
    const res = await fetch(`${base}/`);
    assert.equal(res.status, 200);
    assert.equal((await res.json()).version, pkg.version);
  }],
  ['unknown paths still answer json', async () => {
    const res = await fetch(`${base}/anything`);
    assert.equal((await res.json()).path, '/anything');
  }],
];
const index = Number(process.env.SLIPWAY_SHARD_INDEX ?? 0);
const total = Number(process.env.SLIPWAY_SHARD_TOTAL ?? 1);
let failed = 0;
for (const [i, [name, run]] of cases.entries()) {
  if (i % total !== index) continue;
  try {
    await run();
    process.stdout.write(`ok - ${name}\n`);
  } catch (err) {
    failed += 1;
    process.stdout.write(`not ok - ${name}: ${err.message}\n`);
  }
}
server.close();
process.exit(failed ? 1 : 0);
