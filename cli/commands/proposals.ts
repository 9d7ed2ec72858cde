/** `slipway proposals`: the proposals of the environments repository, open first, with their approvals. */
import type { Command } from 'commander';
import type { ProposalState } from '../../lib/gitprovider/index.js';
import { reportFailure, withRepoFlags, type RepoFlags } from '../../lib/promote/flags.js';
import { SlipwayError } from '../../lib/errors.js';

interface ProposalsOptions extends RepoFlags {
  env?: string;
  service?: string;
  state?: string;
  json?: boolean;
}

const STATES: ProposalState[] = ['open', 'merged', 'closed', 'superseded'];

export function register(program: Command): void {
  const command = program
    .command('proposals')
    .description('list proposals (digest bumps waiting for, or past, a merge)')
    .option('--env <name>', 'only this environment')
    .option('--service <name>', 'only this service')
    .option('--state <state>', `only this state: ${STATES.join(', ')}`)
    .option('--json', 'print the proposals as JSON');
  withRepoFlags(command).action(async (opts: ProposalsOptions) => {
    try {
      if (opts.state && !STATES.includes(opts.state as ProposalState)) {
        throw new SlipwayError('BAD_FLAG', `--state "${opts.state}" is not one of ${STATES.join(', ')}`, 'stalling', {});
      }
      const { openProvider } = await import('../../lib/promote/index.js');
      const { provider } = await openProvider(opts);
      const list = await provider.list({ environment: opts.env, service: opts.service, state: opts.state as ProposalState | undefined });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ ok: true, proposals: list }, null, 2)}\n`);
        return;
      }
      if (list.length === 0) {
        process.stdout.write('no proposals\n');
        return;
      }
      const order = (s: ProposalState) => STATES.indexOf(s);
      const rows = [...list].sort((a, b) => order(a.state) - order(b.state) || a.id.localeCompare(b.id));
      const width = Math.max(...rows.map((p) => p.id.length));
      for (const p of rows) {
        const approvals = p.approvals.length ? ` approved by ${p.approvals.join(', ')}` : '';
        process.stdout.write(`${p.state.padEnd(10)} ${p.id.padEnd(width)}  ${p.digest}  by ${p.author}${approvals}${p.url ? `  ${p.url}` : ''}\n`);
      }
    } catch (err) {
      reportFailure('proposals', err, opts.json);
    }
  });
}
