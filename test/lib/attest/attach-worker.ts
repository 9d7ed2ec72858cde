/** Run as its own process by concurrency.test.ts: sign and attach provenance for one image, N times. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openImageStore } from '../../../lib/oci/index.js';
import { buildProvenance } from '../../../builder/provenance/index.js';
import { signAndAttach } from '../../../builder/sign/index.js';

const [repository, digest, keyFile, times, barrier] = process.argv.slice(2) as [string, string, string, string, string];
const key = JSON.parse(readFileSync(keyFile, 'utf8')) as { name: string; privateKeyPem: string; publicKeyPem: string };
const store = openImageStore(repository);
// Start together: say we are ready, then wait for the test to say go, so the writers really overlap.
writeFileSync(join(barrier, `ready-${process.pid}`), '');
while (!existsSync(join(barrier, 'go'))) await new Promise((r) => setTimeout(r, 10));
for (let i = 0; i < Number(times); i++) {
  const statement = buildProvenance({
    image: { name: repository, digest },
    source: { repo: 'https://git.example/acme/web', ref: 'refs/heads/main', commit: '0123456789abcdef0123456789abcdef01234567' },
    pipelinePath: '.slipway/pipeline.yaml',
    startedOn: '2026-11-23T10:00:00Z',
    finishedOn: '2026-11-23T10:01:00Z',
    builderVersion: `worker-${process.pid}-${i}`,
  });
  await signAndAttach({ store, digest, statement, key });
}
