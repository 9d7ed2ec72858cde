/**
 * The rollback on GitHub: the revert commit on a branch, a pull request, merged. Against the in-process GitHub
 * stand-in (GitHub's response shapes, git data in a real bare repository read back with the git CLI).
 */
import { join } from 'node:path';
import { createGitHubRollback } from '../../../lib/rollback/index.js';
import type { RevertRequest } from '../../../lib/gitprovider/types.js';
import { FakeGitHub } from '../../support/github/server.js';
import { DIGEST, serviceYaml, standardHistory, TestRepo } from './repo.js';

const TOKENS = { 'tok-bot': 'slipway-bot' };
const now = () => new Date('2026-03-01T12:00:00Z');

let repo: TestRepo;
let bare: string;
let gh: FakeGitHub;

beforeEach(async () => {
  repo = new TestRepo();
});
afterEach(async () => {
  await gh?.stop();
  repo.cleanup();
});

async function hosted(): Promise<void> {
  bare = join(repo.root, 'environments.git');
  repo.gitIn(repo.root, 'clone', '-q', '--bare', repo.dir, bare);
  gh = await new FakeGitHub({ owner: 'shop', repo: 'environments', gitdir: bare, tokens: TOKENS, clock: now }).start();
}

function rollback(extra: Partial<Parameters<typeof createGitHubRollback>[0]> = {}) {
  return createGitHubRollback({ owner: 'shop', repo: 'environments', token: 'tok-bot', baseUrl: gh.url, now, ...extra });
}

function request(extra: Partial<RevertRequest> = {}): RevertRequest {
  return { environment: 'staging', service: 'checkout', badDigest: DIGEST.b, reason: 'canary analysis breach', summary: 'fail: errorRate: canary error rate 4.10% vs baseline 0.50%', actor: 'slipway-controller', quarantine: true, ...extra };
}

const inBare = (...args: string[]) => repo.gitIn(bare, ...args);

/** Someone else pushes to main on GitHub. */
function pushFromElsewhere(message: string, files: Record<string, string>): string {
  const clone = join(repo.root, `elsewhere-${Math.random().toString(36).slice(2)}`);
  repo.gitIn(repo.root, 'clone', '-q', bare, clone);
  const sha = repo.commit(message, files, clone);
  repo.gitIn(clone, 'push', '-q', 'origin', 'main');
  return sha;
}

describe('rollback on GitHub', () => {
  it('merges a pull request whose revert commit restores the previous digest, quarantines it and carries the trailers', async () => {
    const { bump, later } = standardHistory(repo);
    await hosted();
    const result = await rollback().revert(request());

    expect(result).toMatchObject({ revertedCommit: bump, restoredDigest: DIGEST.a, explicit: false, quarantined: true, attempts: 1 });
    expect(inBare('rev-parse', 'main').trim()).toBe(result.commit);
    expect(inBare('log', '-1', '--format=%P', result.commit).trim()).toBe(`${later} ${result.revertCommit}`);
    expect(inBare('show', `main:staging/services/checkout.yaml`)).toBe(serviceYaml('checkout', DIGEST.a));
    expect(inBare('show', `main:staging/services/cart.yaml`)).toContain(DIGEST.d);
    expect(inBare('show', 'main:quarantine.yaml')).toContain(DIGEST.b);
    for (const sha of [result.revertCommit, result.commit]) {
      expect(inBare('log', '-1', '--format=%(trailers:key=Slipway-Reverts,valueonly)', sha).trim()).toBe(bump);
      expect(inBare('log', '-1', '--format=%(trailers:key=Slipway-Rollback,valueonly)', sha).trim()).toBe('staging/checkout by slipway-controller');
    }
    expect(inBare('log', '-1', '--format=%s', result.revertCommit).trim()).toBe(`Revert "Promote checkout to ${DIGEST.b.slice(0, 19)}"`);
    expect(gh.pulls).toHaveLength(1);
    expect(gh.pulls[0]).toMatchObject({ state: 'closed', merge_commit_sha: result.commit });
    expect(result.pullRequest?.number).toBe(1);
  });

  it('takes in a main that moved while the pull request was open (no conflict, no force)', async () => {
    standardHistory(repo);
    await hosted();
    let moved = '';
    const result = await rollback({
      beforeMerge: async () => {
        moved = pushFromElsewhere('Promote cart again', { 'staging/services/cart.yaml': serviceYaml('cart', DIGEST.a) });
      },
    }).revert(request());
    expect(result.attempts).toBe(1);
    expect(inBare('log', '-1', '--format=%P', 'main').trim().split(' ')[0]).toBe(moved);
    expect(inBare('show', 'main:staging/services/cart.yaml')).toContain(DIGEST.a);
    expect(inBare('show', 'main:staging/services/checkout.yaml')).toContain(DIGEST.a);
  });

  it('builds the rollback again when a change to the same lines makes the pull request unmergeable', async () => {
    standardHistory(repo);
    await hosted();
    const result = await rollback({
      beforeMerge: async (_n, attempt) => {
        if (attempt === 1) pushFromElsewhere('Scale checkout', { 'staging/services/checkout.yaml': serviceYaml('checkout', DIGEST.b, { replicas: 3 }) });
      },
    }).revert(request());
    expect(result).toMatchObject({ attempts: 2, explicit: true, restoredDigest: DIGEST.a });
    expect(inBare('show', 'main:staging/services/checkout.yaml')).toBe(serviceYaml('checkout', DIGEST.a, { replicas: 3 }));
    expect(gh.pulls.map((p) => [p.number, p.state, p.merged_at !== null])).toEqual([
      [1, 'closed', false],
      [2, 'closed', true],
    ]);
  });

  it('reports an already rolled back digest without opening a pull request', async () => {
    standardHistory(repo);
    await hosted();
    const first = await rollback().revert(request());
    const second = await rollback().revert(request());
    expect(second).toMatchObject({ alreadyRolledBack: true, commit: first.commit });
    expect(gh.pulls).toHaveLength(1);
  });
});
