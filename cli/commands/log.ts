/** `slipway log [--service S] [--env E]`: the promotion history of services, from git alone (who, when, which digest, which source commit). */
import type { Command } from 'commander';
import { SlipwayError } from '../../lib/errors.js';
import { reportFailure } from '../../lib/promote/flags.js';
import type { HistoryEntry } from '../../lib/promote/index.js';

interface LogOptions {
  repo?: string;
  branch: string;
  service?: string;
  env?: string;
  limit: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('log')
    .description('print the promotion history of services from the git history of the environments repository')
    .option('--repo <path|url>', 'the environments repository: a path on disk (bare or not) or an http(s) git URL, fetched first (default: the current directory)')
    .option('--branch <name>', 'the main branch', 'main')
    .option('--service <name>', 'only this service')
    .option('--env <name>', 'only this environment')
    .option('--limit <n>', 'at most this many entries, newest first', '50')
    .option('--json', 'print the entries as JSON')
    .action(async (opts: LogOptions) => {
      try {
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new SlipwayError('BAD_FLAG', `--limit "${opts.limit}" must be a positive whole number`, 'stalling', {});
        const [{ openRepository }, { promotionHistory, repoStateReader }] = await Promise.all([import('../../lib/gitprovider/index.js'), import('../../lib/promote/index.js')]);
        // Only git is read: no verifier is needed.
        const repo = await openRepository(opts.repo ?? '.');
        const reader = repoStateReader(repo, opts.branch);
        const environments = opts.env ? [opts.env] : await reader.environments();
        const main = await repo.mustResolve(`refs/heads/${opts.branch}`, 'the main branch');
        const entries = await promotionHistory(repo, main, { environments, service: opts.service, limit });
        if (opts.json) process.stdout.write(`${JSON.stringify({ ok: true, entries }, null, 2)}\n`);
        else if (entries.length === 0) process.stdout.write('no changes to service files found\n');
        else process.stdout.write(entries.map(line).join(''));
      } catch (err) {
        reportFailure('log', err, opts.json);
      }
    });
}

function line(e: HistoryEntry): string {
  const digest = e.digest ? e.digest.slice(0, 19) : '(removed)';
  const parts = [`${e.at.replace('.000Z', 'Z')}  ${e.environment}/${e.service}  ${e.kind.padEnd(9)} ${digest}  by ${e.by}`];
  if (e.proposedBy && e.proposedBy !== e.by) parts.push(`proposed by ${e.proposedBy}`);
  if (e.approvedBy.length) parts.push(`approved by ${e.approvedBy.join(', ')}`);
  if (e.sourceCommit) parts.push(`source ${e.sourceCommit.slice(0, 12)}`);
  if (e.override) parts.push(`freeze override: ${e.override}`);
  if (e.kind === 'rollback' && e.rollback) parts.push(`rollback: ${e.rollback}`);
  return `${parts.join('; ')}  (${e.commit.slice(0, 12)})\n`;
}
