/**
 * A RollbackPort that does what a person would: `git revert` of the commit that introduced the bad digest,
 * with the Slipway trailers. (The analysis area's revert, with quarantine and retries, replaces it on main.)
 */
import { execFileSync } from 'node:child_process';
import type { RevertRequest, RevertResult, RollbackPort } from '../../lib/gitprovider/types.js';

export class GitCliRevert implements RollbackPort {
  readonly requests: RevertRequest[] = [];
  constructor(private readonly dir: string) {}

  private git(...args: string[]): string {
    return execFileSync('git', args, {
      cwd: this.dir,
      encoding: 'utf8',
      env: { ...process.env, GIT_AUTHOR_NAME: 'slipway', GIT_AUTHOR_EMAIL: 'slipway@localhost', GIT_COMMITTER_NAME: 'slipway', GIT_COMMITTER_EMAIL: 'slipway@localhost' },
    }).trim();
  }

  async revert(request: RevertRequest): Promise<RevertResult> {
    this.requests.push(request);
    const file = `${request.environment}/services/${request.service}.yaml`;
    const introducing = this.git('log', '-n', '1', '--format=%H', `-S${request.badDigest}`, '--', file);
    if (!introducing) throw new Error(`no commit introduced ${request.badDigest} in ${file}`);
    this.git('revert', '--no-edit', '--no-commit', introducing);
    const message = `Revert ${request.service} in ${request.environment}: ${request.reason}\n\n${request.summary ?? ''}\n\nSlipway-Rollback: ${request.badDigest}\nSlipway-Reverts: ${introducing}\n`;
    this.git('commit', '-q', '-m', message);
    const commit = this.git('rev-parse', 'HEAD');
    const restored = /digest:\s*(sha256:[0-9a-f]{64})/.exec(this.git('show', `HEAD:${file}`))?.[1] ?? '';
    return { commit, revertedCommit: introducing, restoredDigest: restored, explicit: false };
  }
}
