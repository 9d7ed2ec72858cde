/**
 * One cold load + validate of one commit of an existing environments repository, in a fresh process:
 * the number `bench/envrepo-diff.ts` reports as (a), on a repository you point it at, and the thing to
 * profile when it regresses.
 *
 *   node --import tsx bench/envrepo-diff.ts --generate-only /tmp/envrepo-1000 --sizes 1000 --commits 1000
 *   node --import tsx bench/envrepo-load.ts /tmp/envrepo-1000 [--ref HEAD]
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/envrepo-load.ts /tmp/envrepo-1000
 *
 * Prints one JSON line: wall and CPU (user + system of this process) of open + resolve + load, the
 * number of service files, and which yaml build parsed them.
 */
import { performance } from 'node:perf_hooks';
import { loadDesiredState, openRepo, resolveRef } from '../lib/envrepo/index.js';
import { yamlBuild } from '../schemas/yaml.js';

const dir = process.argv[2];
if (!dir || dir.startsWith('--')) {
  console.error('usage: node --import tsx bench/envrepo-load.ts <environments repo> [--ref REF]');
  process.exit(2);
}
const refAt = process.argv.indexOf('--ref');
const ref = refAt > 0 ? process.argv[refAt + 1]! : 'HEAD';

const cpu = process.cpuUsage();
const start = performance.now();
const repo = await openRepo({ repo: dir });
const commit = await resolveRef({ repo, ref });
const result = await loadDesiredState({ repo, commit });
const wallMs = performance.now() - start;
const used = process.cpuUsage(cpu);
if (!result.ok) {
  console.error(`${ref} does not validate: ${result.problems.length} problems, first: ${JSON.stringify(result.problems[0])}`);
  process.exit(1);
}
const services = result.state.environments.reduce((n, e) => n + Object.keys(e.services).length, 0);
console.log(JSON.stringify({ ref, commit, services, wallMs: Math.round(wallMs), cpuMs: Math.round((used.user + used.system) / 1000), yamlBuild }));
