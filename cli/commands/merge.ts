/**
 * `slipway merge <proposal>`: merge a proposal into main after the gates (verification, quarantine,
 * approvals, freeze). During a freeze, `--override "<reason>"` merges anyway and records the reason in
 * the merge commit and the audit log.
 */
import type { Command } from 'commander';
import { actorOf, reportFailure, withRepoFlags, type RepoFlags } from '../../lib/promote/flags.js';

interface MergeOptions extends RepoFlags {
  as?: string;
  override?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const command = program
    .command('merge')
    .description('merge a proposal into main once it verifies, is not quarantined, has its approvals and no freeze window is in force')
    .argument('<proposal>', 'the proposal: <env>/<service>-<short digest> (see slipway proposals), or #<number> on GitHub')
    .option('--as <name>', 'who merges: "Name <email>" (default $SLIPWAY_ACTOR or the login name)')
    .option('--override <reason>', 'merge during a freeze window; the reason is recorded in the merge commit')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExit status: 0 merged; 1 refused (NOT_VERIFIED, QUARANTINED, APPROVALS_MISSING, FROZEN, NOT_OPEN); 2 bad input or an unreadable repository.');
  withRepoFlags(command).action(async (id: string, opts: MergeOptions) => {
    try {
      const { openProvider } = await import('../../lib/promote/index.js');
      const { provider } = await openProvider(opts);
      const result = await provider.merge(id, { actor: actorOf(opts.as), override: opts.override });
      if (opts.json) process.stdout.write(`${JSON.stringify({ ok: true, ...result }, null, 2)}\n`);
      else {
        const p = result.proposal;
        process.stdout.write(`merged ${p.id}: ${p.service} ${p.digest} into ${p.environment} (${result.mergeCommit.slice(0, 12)})\n`);
        if (opts.override) process.stdout.write(`  freeze override recorded: ${opts.override}\n`);
      }
    } catch (err) {
      reportFailure('merge', err, opts.json);
    }
  });
}
