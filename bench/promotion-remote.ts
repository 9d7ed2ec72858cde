/**
 * Propose + merge one digest bump in an environments repository with 1,000 services and 5,000 commits
 * behind an http remote (`git http-backend` on loopback), through the local provider's mirror (list refs,
 * fetch what is missing, commit, push the proposal branch, push main), against a person doing the same
 * with the `git` CLI in a clone (fetch, branch, edit, commit, push the branch, merge --no-ff, push main).
 * The first mirror clone is reported on its own. Verification is a constant "verified" function.
 * Usage: node --import tsx bench/promotion-remote.ts [runs=5]
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { bumpDigest } from '../lib/bump/index.js';
import { LocalGitProvider, RemoteRepo, type Verifier } from '../lib/gitprovider/index.js';
import { startGitHttp } from '../test/support/git-http.js';
import { makeRepo } from './bump.js';

const runs = Number(process.argv[2] ?? 5);
const ENV = { ...process.env, GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'b@example.com', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'b@example.com', GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
// Not execFileSync: the http server the git CLI talks to runs in this process.
const git = async (cwd: string, args: string[]) => (await promisify(execFile)('git', args, { cwd, env: ENV, encoding: 'utf8', maxBuffer: 1 << 30 })).stdout.trim();
const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const svc = (i: number) => `svc-${String(i).padStart(4, '0')}`;
const verify: Verifier = async (req) => ({ ok: true, provenance: { digest: req.digest, builderId: 'b', sourceRepo: 'r', sourceRef: 'refs/heads/main', sourceCommit: 'c'.repeat(40), keyName: 'builder' } });

function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  return { median: +s[Math.floor(s.length / 2)]!.toFixed(1), min: +s[0]!.toFixed(1), max: +s[s.length - 1]!.toFixed(1) };
}

async function main() {
  const root = mkdtempSync(join(tmpdir(), 'slipway-bench-remote-'));
  const repo = makeRepo(root);
  await git(repo, ['config', 'http.receivepack', 'true']);
  const server = await startGitHttp(root);
  const url = `${server.url}/envs.git`;
  try {
    const mirror = join(root, 'mirror.git');
    let start = performance.now();
    await RemoteRepo.connect(url, { mirror });
    const firstCloneMs = performance.now() - start;

    // Each run is what one `slipway promote`/`merge` process does once the mirror exists: open (list refs,
    // fetch what moved), propose (push the branch), merge (push main).
    const slipwayMs: number[] = [];
    for (let run = 0; run < runs; run++) {
      const name = svc(run + 7);
      start = performance.now();
      const provider = new LocalGitProvider({ repo: await RemoteRepo.connect(url, { mirror }), verify });
      const p = await provider.propose({ environment: 'staging', service: name, digest: digest(900_000 + run), repository: `localhost:5000/${name}` });
      await provider.merge(p.id, { actor: 'bench' });
      slipwayMs.push(performance.now() - start);
    }
    await git(repo, ['fsck', '--no-dangling']);

    const work = join(root, 'work');
    await git(root, ['clone', '-q', url, work]);
    const cliMs: number[] = [];
    for (let run = 0; run < runs; run++) {
      const name = svc(run + 100);
      const branch = `bump/${name}`;
      const file = join(work, 'staging', 'services', `${name}.yaml`);
      start = performance.now();
      await git(work, ['fetch', '-q', 'origin']);
      await git(work, ['checkout', '-q', '-B', 'main', 'origin/main']);
      await git(work, ['checkout', '-q', '-b', branch]);
      writeFileSync(file, bumpDigest(readFileSync(file, 'utf8'), { digest: digest(800_000 + run) }).content);
      await git(work, ['commit', '-q', '-am', `Promote ${name}`]);
      await git(work, ['push', '-q', 'origin', branch]);
      await git(work, ['checkout', '-q', 'main']);
      await git(work, ['merge', '-q', '--no-ff', '-m', `Merge ${branch}`, branch]);
      await git(work, ['push', '-q', 'origin', 'main']);
      cliMs.push(performance.now() - start);
    }

    const s = stats(slipwayMs);
    const c = stats(cliMs);
    process.stdout.write(
      `${JSON.stringify(
        {
          services: 1000,
          commits: Number(await git(repo, ['rev-list', '--count', 'main'])),
          runs,
          firstMirrorCloneMs: Math.round(firstCloneMs),
          slipwayOpenProposeMergeMs: s,
          gitCliFetchBranchCommitPushMergePushMs: c,
          ratioSlipwayToGitCli: +(s.median / c.median).toFixed(2),
          httpRequestsServed: server.requests.length,
          machine: `${cpus().length} cores, Node ${process.versions.node}`,
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await server.close();
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
