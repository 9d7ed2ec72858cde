/**
 * Propose + merge one digest bump in an environments repository with 1,000 services and 5,000 commits,
 * through the local provider (isomorphic-git, bare repository), against a person doing the same with
 * the `git` CLI (branch, edit, commit, merge --no-ff, in a working clone). Verification is a constant
 * "verified" function here: this measures the git side; provenance verification is benchmarked in
 * bench/verify.ts.
 * Usage: node --import tsx bench/bump.ts [runs=7]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bumpDigest } from '../lib/bump/index.js';
import { LocalGitProvider, type Verifier } from '../lib/gitprovider/index.js';

const SERVICES = 1000;
const COMMITS = 5000;
const runs = Number(process.argv[2] ?? 7);
const ENV = { ...process.env, GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'b@example.com', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'b@example.com', GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
const git = (cwd: string, args: string[], input?: string) => execFileSync('git', args, { cwd, env: ENV, input, encoding: 'utf8', maxBuffer: 1 << 30 }).trim();
const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const svc = (i: number) => `svc-${String(i).padStart(4, '0')}`;

function service(name: string, d: string): string {
  return `# ${name}\napiVersion: slipway.dev/v1\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n  image:\n    repository: localhost:5000/${name} # pushed by the builder\n    digest: ${d}\n  replicas: 2\n  port: 8080\n`;
}

/** A bare repository built with git fast-import: one commit with every file, then one bump per commit. */
export function makeRepo(root: string): string {
  const repo = join(root, 'envs.git');
  git(root, ['init', '-q', '--bare', '-b', 'main', repo]);
  const out: string[] = [];
  const blob = (path: string, text: string) => `M 100644 inline ${path}\ndata ${Buffer.byteLength(text)}\n${text}\n`;
  const commit = (n: number, message: string, files: string) =>
    `commit refs/heads/main\ncommitter bench <b@example.com> ${1_700_000_000 + n * 60} +0000\ndata ${Buffer.byteLength(message)}\n${message}\n${files}`;
  let files = '';
  files += blob('slipway.yaml', 'apiVersion: slipway.dev/v1\nkind: Slipway\nmetadata:\n  name: bench\nspec:\n  environments: [staging, production]\n  trust:\n    keys:\n      - name: builder\n        publicKey: keys/builder.pub\n    builders: ["https://slipway.dev/builder/local/v1"]\n    sources:\n      - repo: "https://git.example/*"\n');
  files += blob('keys/builder.pub', '-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n');
  for (const env of ['staging', 'production']) {
    files += blob(`${env}/environment.yaml`, `apiVersion: slipway.dev/v1\nkind: Environment\nmetadata:\n  name: ${env}\nspec:\n  target:\n    type: local\n  autoMerge: true\n`);
    for (let i = 0; i < SERVICES / 2; i++) files += blob(`${env}/services/${svc(i)}.yaml`, service(svc(i), digest(1)));
  }
  out.push(commit(0, 'Initial', files));
  for (let n = 1; n < COMMITS; n++) {
    const env = n % 2 ? 'staging' : 'production';
    const i = n % (SERVICES / 2);
    out.push(commit(n, `Bump ${svc(i)} in ${env}`, blob(`${env}/services/${svc(i)}.yaml`, service(svc(i), digest(n + 1)))));
  }
  git(repo, ['fast-import', '--quiet'], out.join(''));
  git(repo, ['gc', '-q']);
  return repo;
}

function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
}

const verify: Verifier = async (req) => ({ ok: true, provenance: { digest: req.digest, builderId: 'b', sourceRepo: 'r', sourceRef: 'refs/heads/main', sourceCommit: 'c'.repeat(40), keyName: 'builder' } });

async function main() {
  const root = mkdtempSync(join(tmpdir(), 'slipway-bench-bump-'));
  try {
    const t0 = performance.now();
    const repo = makeRepo(root);
    const setupMs = performance.now() - t0;
    const count = git(repo, ['rev-list', '--count', 'main']);

    // Cold: a new provider per bump, as each `slipway` command process starts (pack index read again).
    // Warm: one provider for all bumps, as a long-running builder or controller keeps it.
    const slipwayMs: number[] = [];
    const warmMs: number[] = [];
    const warm = new LocalGitProvider({ repo, verify });
    for (let run = 0; run < runs; run++) {
      for (const [provider, into, offset] of [[new LocalGitProvider({ repo, verify }), slipwayMs, 0], [warm, warmMs, 500]] as const) {
        const name = svc(run + 7 + offset / 10);
        const start = performance.now();
        const p = await provider.propose({ environment: 'staging', service: name, digest: digest(900_000 + run + offset), repository: `localhost:5000/${name}` });
        await provider.merge(p.id, { actor: 'bench' });
        into.push(performance.now() - start);
      }
    }
    git(repo, ['fsck', '--no-dangling']);

    const work = join(root, 'work');
    git(root, ['clone', '-q', repo, work]);
    const cliMs: number[] = [];
    for (let run = 0; run < runs; run++) {
      const name = svc(run + 100);
      const file = join(work, 'staging', 'services', `${name}.yaml`);
      const start = performance.now();
      const branch = `bump/${name}`;
      git(work, ['checkout', '-q', '-b', branch, 'main']);
      writeFileSync(file, bumpDigest(readFileSync(file, 'utf8'), { digest: digest(800_000 + run) }).content);
      git(work, ['commit', '-q', '-am', `Promote ${name}`]);
      git(work, ['checkout', '-q', 'main']);
      git(work, ['merge', '-q', '--no-ff', '-m', `Merge ${branch}`, branch]);
      cliMs.push(performance.now() - start);
    }

    const s = stats(slipwayMs);
    const w = stats(warmMs);
    const c = stats(cliMs);
    const result = {
      services: SERVICES,
      commits: Number(count),
      setupMs: Math.round(setupMs),
      runs,
      slipwayColdProposeMergeMs: { median: +s.median.toFixed(1), min: +s.min.toFixed(1), max: +s.max.toFixed(1) },
      slipwayWarmProposeMergeMs: { median: +w.median.toFixed(1), min: +w.min.toFixed(1), max: +w.max.toFixed(1) },
      gitCliBranchCommitMergeMs: { median: +c.median.toFixed(1), min: +c.min.toFixed(1), max: +c.max.toFixed(1) },
      ratioColdToGitCli: +(s.median / c.median).toFixed(2),
      ratioWarmToGitCli: +(w.median / c.median).toFixed(2),
      target: 'under 300 ms',
      machine: `${cpus().length} cores, Node ${process.versions.node}`,
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
