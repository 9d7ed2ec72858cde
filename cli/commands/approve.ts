/**
 * `slipway approve <proposal> --as <name>`: record an approval. Local repositories get a commit with a
 * `Slipway-Approved-By:` trailer on the proposal branch; on GitHub it is a pull request review by the
 * token's user. The author of a proposal cannot approve it.
 */
import type { Command } from 'commander';
import { actorOf, reportFailure, withRepoFlags, type RepoFlags } from '../../lib/promote/flags.js';

interface ApproveOptions extends RepoFlags {
  as?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const command = program
    .command('approve')
    .description('approve a proposal (a commit trailer on its branch; a review on GitHub)')
    .argument('<proposal>', 'the proposal: <env>/<service>-<short digest>, or #<number> on GitHub')
    .option('--as <name>', 'who approves: "Name <email>" (default $SLIPWAY_ACTOR or the login name)')
    .option('--json', 'print the proposal as JSON')
    .addHelpText('after', '\nExit status: 0 approved; 1 refused (SELF_APPROVAL, NOT_OPEN); 2 bad input or an unreadable repository.');
  withRepoFlags(command).action(async (id: string, opts: ApproveOptions) => {
    try {
      const { openProvider } = await import('../../lib/promote/index.js');
      const { provider } = await openProvider(opts);
      const p = await provider.approve(id, actorOf(opts.as));
      if (opts.json) process.stdout.write(`${JSON.stringify({ ok: true, proposal: p }, null, 2)}\n`);
      else process.stdout.write(`approved ${p.id}; approvals: ${p.approvals.join(', ') || 'none'}\n`);
    } catch (err) {
      reportFailure('approve', err, opts.json);
    }
  });
}
