/**
 * A stand-in controller process for the orphan test: starts a local target on the given SLIPWAY_HOME, runs one
 * service, prints the instance pids as JSON, then idles until it is killed (the test SIGKILLs it).
 * Usage: node --import tsx orphan-controller.ts <home> <repository> <digest>
 */
import { openImageStore } from '../../../../lib/oci/index.js';
import { createLocalTarget } from '../../../../controller/targets/local/index.js';

const [home, repository, digest] = process.argv.slice(2) as [string, string, string];
const target = createLocalTarget({
  home,
  openStore: (repo) => openImageStore(repo),
  health: { startupProbeMs: 30 },
  baseEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
});
const ref = { environment: 'staging', service: 'orphaned' };
await target.ensureTrack(ref, 'stable', { repository, digest, replicas: 2, port: 8080, healthPath: '/healthz', env: {} });
process.stdout.write(`${JSON.stringify(target.instances(ref, 'stable').map((i) => i.pid))}\n`);
setInterval(() => undefined, 60_000);
