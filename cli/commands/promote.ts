/**
 * `slipway promote <service> --from staging --to production`: propose the digest main runs in one
 * environment to the next. Refused (exit 1) when it does not verify or is quarantined; merged at once
 * only when the target environment has autoMerge and every gate passes.
 */
import type { Command } from 'commander';
import { actorOf, reportFailure, withRepoFlags, type RepoFlags } from '../../lib/promote/flags.js';

interface PromoteOptions extends RepoFlags {
  from: string;
  to: string;
  as?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const command = program
    .command('promote')
    .description('propose the digest a service runs in one environment (main) to the next environment')
    .argument('<service>', 'the service to promote')
    .requiredOption('--from <env>', 'the environment whose digest on main is promoted')
    .requiredOption('--to <env>', 'the environment that receives it (later in slipway.yaml)')
    .option('--as <name>', 'who promotes: "Name <email>" (default $SLIPWAY_ACTOR or the login name)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExit status: 0 proposed or merged; 1 refused (NOT_VERIFIED, QUARANTINED, WRONG_DIRECTION); 2 bad input or an unreadable repository.');
  withRepoFlags(command).action(async (service: string, opts: PromoteOptions) => {
    try {
      const actor = actorOf(opts.as);
      const { openProvider, promote } = await import('../../lib/promote/index.js');
      const deps = await openProvider(opts);
      const result = await promote(deps, { service, from: opts.from, to: opts.to, actor });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ ok: true, ...result }, null, 2)}\n`);
        return;
      }
      const p = result.proposal;
      const where = p.url ?? p.branch;
      if (result.outcome === 'already-updated') process.stdout.write(`${service} in ${opts.to} already runs ${p.digest}; nothing to propose\n`);
      else if (result.outcome === 'merged') process.stdout.write(`merged ${p.id}: ${service} ${p.digest} is on main of ${opts.to}\n`);
      else {
        process.stdout.write(`proposed ${p.id} (${where}): ${service} ${p.digest} from ${opts.from} to ${opts.to}\n`);
        if (result.held) process.stdout.write(`  not merged: ${result.held.message}\n`);
        else process.stdout.write(`  merge it with: slipway merge ${p.id}${opts.repo ? ` --repo ${opts.repo}` : ''}\n`);
      }
    } catch (err) {
      reportFailure('promote', err, opts.json);
    }
  });
}
