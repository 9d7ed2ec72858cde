/**
 * Builder benchmarks (run: node --import tsx bench/build-cache.ts [--write]):
 *  1. `slipway build` on an unchanged commit: cold (stages run) vs cache hit, whole command wall time,
 *     plus the in-process time of a cache hit (what the builder controls, without Node start-up).
 *  2. Image build + push of a 50 MB build output with 5,000 files to a local docker-registry, against
 *     `skopeo copy` of the same image from an OCI layout dir to the registry.
 *  3. Reproducibility: the same commit built from two clones in different temp dirs with different
 *     HOME and SLIPWAY_HOME.
 * --write replaces bench/results/builder.md with the numbers.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from '../builder/index.js';
import { buildImage } from '../builder/image/index.js';
import { openImageStore, pushImage } from '../lib/oci/index.js';
import { createServiceRepo } from '../test/support/fixtures/service-repo.js';
import { startRegistry } from '../test/support/registry.js';

const execFileAsync = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'bin/slipway.js');
const compiled = await import('node:fs').then((fs) => fs.existsSync(join(root, 'dist/cli/main.js')));

const ms = (n: number) => `${n.toFixed(0)} ms`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const min = (xs: number[]) => Math.min(...xs);

const GNU_TIME = '/usr/bin/time';
const haveGnuTime = await import('node:fs').then((fs) => fs.existsSync(GNU_TIME));

/** Runs a command and returns wall ms and, when GNU time is there, CPU ms (user + sys) of it and its children. */
async function measured(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ stdout: string; stderr: string; wallMs: number; cpuMs?: number }> {
  const t0 = performance.now();
  if (!haveGnuTime) {
    const out = await execFileAsync(cmd, args, opts);
    return { ...out, wallMs: performance.now() - t0 };
  }
  const out = await execFileAsync(GNU_TIME, ['-f', 'CPU %U %S', cmd, ...args], opts);
  const wallMs = performance.now() - t0;
  const lines = out.stderr.trimEnd().split('\n');
  const m = /^CPU ([\d.]+) ([\d.]+)$/.exec(lines[lines.length - 1] ?? '');
  return { stdout: out.stdout, stderr: lines.slice(0, -1).join('\n'), wallMs, ...(m ? { cpuMs: (Number(m[1]) + Number(m[2])) * 1000 } : {}) };
}

const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const out = await fn();
  return [out, performance.now() - t0];
}

/** Deterministic content: half pseudo-random bytes, half repetitive text, like real build output. */
function fileBody(i: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  let x = (i + 1) * 2654435761;
  const text = Buffer.from(`export const value${i} = ${JSON.stringify('lorem ipsum dolor sit amet '.repeat(3))};\n`);
  for (let o = 0; o < size; o++) {
    if (o < size / 2) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      buf[o] = x & 0xff;
    } else buf[o] = text[o % text.length]!;
  }
  return buf;
}

const tmp = await mkdtemp(join(tmpdir(), 'slipway-bench-builder-'));
const registry = await startRegistry();
const lines: string[] = [];
const log = (s: string) => {
  lines.push(s);
  process.stdout.write(`${s}\n`);
};

try {
  // ------------------------------------------------------------------ 1. cache hit
  const repo = await createServiceRepo({ dir: join(tmp, 'hello') });
  const env = { PATH: process.env.PATH, HOME: tmp, SLIPWAY_HOME: join(tmp, 'home') };
  const cli = (args: string[]) => measured(process.execPath, [BIN, ...args], { env, cwd: tmp });
  const store = `${registry.host}/hello`;
  const cold = await cli(['build', repo.dir, '--commit', repo.commit, '--registry', store]);
  const hits: { wallMs: number; cpuMs?: number }[] = [];
  for (let i = 0; i < 7; i++) {
    const out = await cli(['build', repo.dir, '--commit', repo.commit, '--registry', store]);
    if (!out.stderr.includes('from cache')) throw new Error(`expected a cache hit, got: ${out.stderr}`);
    hits.push(out);
  }
  const nodeAlone = await measured(process.execPath, ['-e', '0']);
  const helpAlone = await measured(process.execPath, [BIN, '--help'], { env, cwd: tmp });
  // The same command with only `build` registered: what the whole CLI costs once every command loads its
  // implementation lazily (as build does). Needs dist/.
  const onlyBuild: { wallMs: number; cpuMs?: number }[] = [];
  if (compiled) {
    const entry = [
      `const { Command } = await import('commander');`,
      `const build = await import(${JSON.stringify(join(root, 'dist/cli/commands/build.js'))});`,
      `const program = new Command('slipway'); build.register(program); await program.parseAsync(process.argv.slice(1), { from: 'user' });`,
    ].join('\n');
    for (let i = 0; i < 7; i++) {
      const out = await measured(process.execPath, ['--input-type=module', '-e', entry, '--', 'build', repo.dir, '--commit', repo.commit, '--registry', store], { env, cwd: root });
      if (!out.stderr.includes('from cache')) throw new Error(`expected a cache hit, got: ${out.stderr}`);
      onlyBuild.push(out);
    }
  }
  const inProcess: number[] = [];
  for (let i = 0; i < 10; i++) {
    const [r, t] = await timed(() => build({ repoDir: repo.dir, commit: repo.commit, store, home: env.SLIPWAY_HOME, env }));
    if (!r.cached) throw new Error('expected a cache hit');
    inProcess.push(t);
  }

  // ------------------------------------------------------------------ 2. 50 MB / 5,000 files
  const context = join(tmp, 'big/dist');
  const files = 5000;
  const size = 10 * 1024;
  for (let i = 0; i < files; i++) {
    const dir = join(context, `mod${String(i % 50).padStart(2, '0')}`);
    if (i < 50) await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `file${i}.js`), fileBody(i, size));
  }
  const totalMB = (files * size) / 1024 / 1024;
  const spec = { context: 'dist', entrypoint: ['node', 'mod00/file0.js'], workingDir: '/app' };
  const cpuBefore = cpuNow();
  const [image, buildMs] = await timed(() => buildImage({ contextDir: context, spec, source: { url: 'https://example.invalid/big', revision: 'b'.repeat(40) }, epoch: 1_767_225_600 }));
  const buildCpuMs = cpuNow() - cpuBefore;
  const cpuBeforePush = cpuNow();
  const [, pushMs] = await timed(() => pushImage(openImageStore(`${registry.host}/big-slipway`), image));
  const pushCpuMs = cpuNow() - cpuBeforePush;
  const layout = join(tmp, 'big-layout');
  await pushImage(openImageStore(`oci:${layout}`), image, 'big');
  const skopeoRun = await measured('skopeo', ['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:big`, `docker://${registry.host}/big-skopeo:big`]);
  const skopeoMs = skopeoRun.wallMs;
  const layerMB = image.layer.size / 1024 / 1024;

  // ------------------------------------------------------------------ 3. reproducibility
  const digests: string[] = [];
  for (const name of ['machine-a', 'machine-b']) {
    const dir = join(tmp, name, 'src', 'hello');
    await execFileAsync('git', ['clone', '-q', repo.dir, dir]);
    const r = await build({ repoDir: dir, commit: repo.commit, store: `oci:${join(tmp, name, 'images')}`, home: join(tmp, name, 'home'), env: { PATH: process.env.PATH, HOME: join(tmp, name) } });
    digests.push(r.digest);
  }

  log('# Builder benchmarks');
  log('');
  log('Command: `node --import tsx bench/build-cache.ts --write`');
  log(`Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version} (zlib ${process.versions.zlib}), shared with other work (load average during the run: ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}).`);
  log(`Date: ${new Date().toISOString()}`);
  log(`CLI: ${compiled ? 'compiled (dist/, as installed)' : 'TypeScript sources through tsx (no dist/ build: start-up is slower)'}`);
  log('');
  log('## 1. `slipway build` on an unchanged commit (sample service, lint + 2-shard test + build)');
  log('');
  const cpuOf = (xs: { cpuMs?: number }[]) => (xs.every((x) => x.cpuMs !== undefined) ? ms(median(xs.map((x) => x.cpuMs!))) : 'n/a');
  const wallOf = (xs: { wallMs: number }[]) => `${ms(min(xs.map((x) => x.wallMs)))} / ${ms(median(xs.map((x) => x.wallMs)))}`;
  log('| run | wall (min / median) | CPU user+sys (median) |');
  log('| --- | --- | --- |');
  log(`| cold (stages run, image built and pushed to docker-registry) | ${ms(cold.wallMs)} | ${cpuOf([cold])} |`);
  log(`| cache hit, whole \`slipway build\` command, 7 runs | ${wallOf(hits)} | ${cpuOf(hits)} |`);
  if (onlyBuild.length) log(`| cache hit, CLI with only the build command registered, 7 runs | ${wallOf(onlyBuild)} | ${cpuOf(onlyBuild)} |`);
  log(`| \`slipway --help\` (loads every command module) | ${ms(helpAlone.wallMs)} | ${cpuOf([helpAlone])} |`);
  log(`| \`node -e 0\` | ${ms(nodeAlone.wallMs)} | ${cpuOf([nodeAlone])} |`);
  log(`| cache hit inside build() (no process start), 10 runs | ${ms(min(inProcess))} / ${ms(median(inProcess))} | |`);
  log('');
  log(
    `Target: cache hit under 200 ms for the whole command: ${min(hits.map((h) => h.wallMs)) < 200 ? 'met' : 'not met on this machine'}. ` +
      'Wall time here is dominated by the machine being shared (see the load average and `node -e 0`); CPU time is the steadier measure. ' +
      'Most of the command is start-up: the other commands\' modules are imported when the CLI starts (compare `--help` and the build-only CLI); ' +
      'the build command itself loads the builder lazily.',
  );
  log('');
  log(`## 2. Image build + push, ${files} files, ${totalMB.toFixed(0)} MB`);
  log('');
  log('| step | wall | CPU user+sys | throughput (wall) |');
  log('| --- | --- | --- | --- |');
  log(`| slipway: tar + gzip (layer ${layerMB.toFixed(1)} MB) | ${ms(buildMs)} | ${ms(buildCpuMs)} | ${(totalMB / (buildMs / 1000)).toFixed(1)} MB/s of output |`);
  log(`| slipway: push to docker-registry | ${ms(pushMs)} | ${ms(pushCpuMs)} | ${(layerMB / (pushMs / 1000)).toFixed(1)} MB/s |`);
  log(`| slipway: build + push | ${ms(buildMs + pushMs)} | ${ms(buildCpuMs + pushCpuMs)} | ${(totalMB / ((buildMs + pushMs) / 1000)).toFixed(1)} MB/s of output |`);
  log(`| skopeo copy --preserve-digests oci: → docker-registry (same image, already compressed) | ${ms(skopeoMs)} | ${skopeoRun.cpuMs !== undefined ? ms(skopeoRun.cpuMs) : 'n/a'} | ${(layerMB / (skopeoMs / 1000)).toFixed(1)} MB/s |`);
  log('');
  log(
    `Ratio slipway build+push / skopeo copy (wall): ${((buildMs + pushMs) / skopeoMs).toFixed(2)}x (target <= 1.5x); push alone: ${(pushMs / skopeoMs).toFixed(2)}x. ` +
      'skopeo copies layers that are already compressed; slipway reads 5,000 files, tars and gzips them (gzip level 6 is most of the CPU) before its push.',
  );
  log('');
  log('## 3. Reproducibility');
  log('');
  log('The same commit of the sample service built from two clones in different temp dirs, with different HOME and SLIPWAY_HOME (empty caches):');
  log('');
  log(`- machine-a: \`${digests[0]}\``);
  log(`- machine-b: \`${digests[1]}\``);
  log(`- equal: ${digests[0] === digests[1] ? 'yes' : 'NO'}`);

  if (process.argv.includes('--write')) {
    await mkdir(join(root, 'bench/results'), { recursive: true });
    await writeFile(join(root, 'bench/results/builder.md'), `${lines.join('\n')}\n`);
  }
} finally {
  await registry.stop();
  await rm(tmp, { recursive: true, force: true });
}
