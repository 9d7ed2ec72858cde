/**
 * `slipway demo`: the whole loop, end to end, on the embedded local target, in a temp dir.
 *
 * 1. `slipway init` an environments repo (and a signing key) and copy the sample service.
 * 2. Build the sample reproducibly, sign its SLSA provenance, land it in staging (auto-merged: it verifies).
 * 3. Run the controller on the local target until staging answers through the weighted proxy.
 * 4. Build a bad version (half its requests fail), land it, send traffic, and watch the canary analysis
 *    fail: traffic back to stable, a revert commit on main, the digest quarantined, staging back on v1.
 * 5. Print what happened (git log, audit trail), what to try next, and clean up.
 */
import * as fs from 'node:fs';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { parseDocument } from 'yaml';
import type { BuildResult } from '../../builder/index.js';
import { SlipwayError, errorMessage } from '../../lib/errors.js';
import type { LocalController } from '../../controller/wiring.js';
import { fail } from './init.js';

interface DemoOptions {
  keep?: boolean;
  timeout: string;
}

const ENV = 'staging';
const SERVICE = 'hello';

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function step(title: string): void {
  say(`\n==> ${title}`);
}

const short = (digest: string | undefined) => (digest ? digest.replace(/^sha256:/, '').slice(0, 12) : '-');

function sampleDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'examples', 'hello');
    if (fs.existsSync(join(candidate, 'server.js'))) return candidate;
    dir = dirname(dir);
  }
  throw new SlipwayError('NO_SAMPLE', 'examples/hello (the sample service) is not next to this slipway install', 'stalling');
}

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_AUTHOR_NAME: 'Demo Person', GIT_AUTHOR_EMAIL: 'demo@localhost', GIT_COMMITTER_NAME: 'Demo Person', GIT_COMMITTER_EMAIL: 'demo@localhost' },
  }).trim();
}

/** Edit one YAML file of the demo repo in place (keeping comments) and commit it as a person would. */
async function editYaml(repoDir: string, file: string, message: string, edit: (doc: ReturnType<typeof parseDocument>) => void): Promise<void> {
  const { parseDocument } = await import('yaml');
  const path = join(repoDir, file);
  const doc = parseDocument(readFileSync(path, 'utf8'));
  edit(doc);
  writeFileSync(path, doc.toString());
  git(repoDir, 'add', file);
  git(repoDir, 'commit', '-q', '-m', message);
}

async function until<T>(what: string, deadline: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new SlipwayError('DEMO_TIMEOUT', `gave up waiting for ${what}`, 'generic');
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function register(program: Command): void {
  program
    .command('demo')
    .summary('run the whole loop end to end on the local target, in a temp dir')
    .description(
      'Inits an environments repo, builds and signs the sample service, lands it in staging, runs the controller on the\n' +
        'local target until it answers, then lands a bad version and shows the canary rolled back by a revert commit.',
    )
    .option('--keep', 'keep the temp dir (environments repo, images, state) instead of removing it')
    .option('--timeout <seconds>', 'give up after this long', '300')
    .action(async (opts: DemoOptions) => {
      // The whole delivery stack, loaded only when the demo runs.
      const [{ build }, { attestAfterPush, resolveSigning }, { initEnvironmentsRepo }, { LocalGitProvider, Repo }, { landBuild, repoStateReader }, { createProvenanceVerifier }, { createLocalController }] = await Promise.all([
        import('../../builder/index.js'),
        import('../../builder/sign/index.js'),
        import('../../lib/envrepo/index.js'),
        import('../../lib/gitprovider/index.js'),
        import('../../lib/promote/index.js'),
        import('../../lib/provenance/index.js'),
        import('../../controller/wiring.js'),
      ]);
      const root = mkdtempSync(join(tmpdir(), 'slipway-demo-'));
      const previousHome = process.env.SLIPWAY_HOME;
      process.env.SLIPWAY_HOME = join(root, 'home');
      const deadline = Date.now() + Number(opts.timeout) * 1000;
      let running: LocalController | undefined;
      let traffic: { stop(): Promise<{ ok: number; failed: number }> } | undefined;
      try {
        const envDir = join(root, 'environments');
        const serviceDir = join(root, 'hello');
        const store = `oci:${join(root, 'images')}`;

        step('1. An environments repository and a signing key (slipway init)');
        const init = await initEnvironmentsRepo({ dir: envDir });
        say(`   ${envDir} at ${init.commit.slice(0, 12)}; key ${init.key.name} (${init.key.fingerprint.slice(0, 16)}…)`);
        // Demo pace: analysis every 5 s instead of 30 s, and no one-minute pause.
        await editYaml(envDir, `${ENV}/environment.yaml`, 'demo: analyse every 5s', (doc) => doc.setIn(['spec', 'analysis', 'interval'], '5s'));
        await editYaml(envDir, `${ENV}/services/${SERVICE}.yaml`, 'demo: short canary steps', (doc) =>
          doc.setIn(['spec', 'strategy'], { canary: { steps: [{ setWeight: 20 }, { analysis: { interval: '5s', count: 2 } }, { setWeight: 50 }, { setWeight: 100 }] } }),
        );

        cpSync(sampleDir(), serviceDir, { recursive: true, filter: (src) => !src.includes('node_modules') && !src.endsWith('/dist') });
        git(serviceDir, 'init', '-q', '-b', 'main');
        git(serviceDir, 'add', '-A');
        git(serviceDir, 'commit', '-q', '-m', 'hello v1');

        const verifier = createProvenanceVerifier();
        const provider = new LocalGitProvider({ repo: envDir, verify: (r) => verifier.verify(r) });
        const reader = repoStateReader(Repo.open(envDir));
        const signing = resolveSigning({});
        const buildAndLand = async (label: string): Promise<BuildResult> => {
          const result = await build({ repoDir: serviceDir, store, afterPush: attestAfterPush(signing) });
          say(`   built ${label}: ${result.repository}@${short(result.digest)} (${result.stages.map((s) => `${s.name} ${s.status}`).join(', ')}), provenance signed`);
          const landing = await landBuild(
            { provider, reader, verify: (r) => verifier.verify(r) },
            { service: SERVICE, repository: result.repository, digest: result.digest, source: { repo: result.source.url, ref: `refs/heads/${result.source.branch ?? 'main'}`, commit: result.source.commit } },
            'slipway-demo <demo@localhost>',
          );
          if (landing.outcome !== 'merged') {
            throw new SlipwayError('DEMO_NOT_MERGED', `the build was not merged to ${ENV}: ${landing.outcome}${'held' in landing && landing.held ? ` (${landing.held.message})` : ''}`, 'generic');
          }
          say(`   proposed and auto-merged to ${ENV}: main is now ${landing.merge?.mergeCommit.slice(0, 12) ?? '?'} (provenance verified: ${landing.verification.ok})`);
          return result;
        };

        step('2. Build, sign and land v1 in staging');
        const v1 = await buildAndLand('v1');

        step('3. The controller makes staging match main (local target: processes behind a weighted proxy)');
        running = await createLocalController({ repo: envDir, environments: [ENV], schedule: '*/2 * * * * *', log: (l) => say(`   controller: ${l}`) });
        const { controller, target } = running;
        await controller.start();
        const stableV1 = await until('v1 to run in staging', deadline, () => {
          const s = controller.service(ENV, SERVICE);
          return s?.phase === 'Completed' && s.runningDigest === v1.digest ? s : undefined;
        });
        const endpoint = (await target.observe({ environment: ENV, service: SERVICE })).endpoint;
        if (!endpoint) throw new SlipwayError('NO_ENDPOINT', 'the local target reports no proxy address for staging/hello', 'generic');
        const answer = await (await fetch(`${endpoint}/`)).text();
        say(`   staging/hello runs ${short(stableV1.runningDigest)}; ${endpoint}/ answers ${answer.trim()}`);

        step('4. A bad version: half of its requests fail');
        await editYaml(serviceDir, '.slipway/pipeline.yaml', 'hello v2 (bad: fails half its requests)', (doc) => doc.setIn(['spec', 'image', 'env', 'HELLO_ERROR_RATE'], '0.5'));
        const pkgPath = join(serviceDir, 'package.json');
        writeFileSync(pkgPath, readFileSync(pkgPath, 'utf8').replace('"version": "1.0.0"', '"version": "2.0.0"'));
        git(serviceDir, 'commit', '-q', '-am', 'hello 2.0.0');
        traffic = sendTraffic(endpoint);
        const v2 = await buildAndLand('v2');
        await controller.trigger('api');
        await until('the canary to start', deadline, () => {
          const s = controller.service(ENV, SERVICE);
          return s?.rolloutDigest === v2.digest && s.weights.canary > 0 ? s : undefined;
        });
        say(`   canary of ${short(v2.digest)} takes ${controller.service(ENV, SERVICE)?.weights.canary}% of traffic; analysis every 5 s`);
        const after = await until('the canary to be decided', deadline, () => {
          const s = controller.service(ENV, SERVICE);
          return s && (s.phase === 'RolledBack' || (s.phase === 'Completed' && s.runningDigest === v2.digest)) ? s : undefined;
        });
        if (after.phase !== 'RolledBack') throw new SlipwayError('DEMO_UNEXPECTED', 'the bad canary was promoted; the analysis did not catch it', 'generic');
        say(`   ${after.message ?? 'rolled back'}`);
        const back = await until('staging to be back on v1 from the revert commit', deadline, async () => {
          await controller.trigger('api');
          const s = controller.service(ENV, SERVICE);
          return s?.phase === 'Completed' && s.runningDigest === v1.digest && s.desiredDigest === v1.digest ? s : undefined;
        });
        const counts = await traffic.stop();
        traffic = undefined;
        say(`   staging/hello is back on ${short(back.runningDigest)} (main says so too); traffic during the canary: ${counts.ok} ok, ${counts.failed} failed`);

        step('5. What happened, in git and in the audit trail');
        say(git(envDir, 'log', '--format=%h %s', '-6').split('\n').map((l) => `   ${l}`).join('\n'));
        const revert = git(envDir, 'log', '-1', '--format=%B');
        say(revert.split('\n').filter((l) => l.startsWith('Slipway-')).map((l) => `   ${l}`).join('\n'));
        const quarantine = readFileSync(join(envDir, 'quarantine.yaml'), 'utf8').includes(v2.digest) || git(envDir, 'show', 'HEAD:quarantine.yaml').includes(v2.digest);
        say(`   ${short(v2.digest)} quarantined in quarantine.yaml: ${quarantine}`);
        for (const e of await controller.history(ENV, SERVICE, 30)) say(`   ${e.at} ${e.action}: ${e.message}`);

        step('Try next');
        say('   slipway init envs && slipway controller --repo envs          follow main and roll out every change');
        say('   slipway status                                              services, digests, phases and weights');
        say('   slipway promote hello --from staging --to production        a proposal a person approves and merges');
        say('   git revert <commit> in the environments repo               a rollback the controller applies even in a freeze window');
        say('   slipway freeze status --env production                      changes wait for the window to end, then apply by themselves');
        say(`\ndemo finished: v1 deployed, bad v2 caught by the canary and reverted in git${opts.keep ? `; files kept in ${root}` : ''}`);
      } catch (err) {
        process.stderr.write(`slipway demo: ${errorMessage(err)}\n`);
        fail(err, false);
      } finally {
        await traffic?.stop().catch(() => undefined);
        await running?.close().catch(() => undefined);
        if (previousHome === undefined) delete process.env.SLIPWAY_HOME;
        else process.env.SLIPWAY_HOME = previousHome;
        if (!opts.keep) rmSync(root, { recursive: true, force: true });
      }
    });
}

/** Steady requests through the proxy (about 40/s) so the canary analysis has samples to judge. */
function sendTraffic(endpoint: string): { stop(): Promise<{ ok: number; failed: number }> } {
  let stopped = false;
  const counts = { ok: 0, failed: 0 };
  const loop = (async () => {
    while (!stopped) {
      try {
        const res = await fetch(`${endpoint}/`);
        await res.arrayBuffer();
        if (res.status >= 500) counts.failed++;
        else counts.ok++;
      } catch {
        counts.failed++;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return counts;
    },
  };
}
