/** `slipway freeze status`: which freeze windows are in force (and until when), and which comes next, per environment. */
import type { Command } from 'commander';
import { parseInstant, reportFailure, withRepoFlags, type RepoFlags } from '../../lib/promote/flags.js';

interface FreezeStatusOptions extends RepoFlags {
  env?: string;
  at?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const freeze = program.command('freeze').description('freeze windows declared in <env>/freeze.yaml');
  const status = freeze
    .command('status')
    .description('show the freeze window in force and the next one, for each environment (read from main)')
    .option('--env <name>', 'only this environment')
    .option('--at <time>', 'evaluate at this instant instead of now (e.g. 2026-12-24T18:00:00+01:00)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExit status: 0 not frozen; 1 at least one listed environment is frozen; 2 bad input or an unreadable repository.');
  withRepoFlags(status).action(async (opts: FreezeStatusOptions) => {
    try {
      const at = parseInstant(opts.at, '--at') ?? new Date();
      const [{ openProvider }, { formatInZone, isFrozen }] = await Promise.all([import('../../lib/promote/index.js'), import('../../lib/freeze/index.js')]);
      const { reader } = await openProvider(opts);
      const names = opts.env ? [opts.env] : await reader.environments();
      const rows = [];
      for (const name of names) {
        const state = await reader.state(name);
        rows.push({ environment: name, windows: state.freeze.length, ...isFrozen(state.freeze, at) });
      }
      if (opts.json) process.stdout.write(`${JSON.stringify({ ok: true, at: at.toISOString(), environments: rows }, null, 2)}\n`);
      else {
        for (const row of rows) {
          const next = row.next ? `; next: "${row.next.name}" ${formatInZone(row.next.start.getTime(), row.next.timeZone)} → ${formatInZone(row.next.end.getTime(), row.next.timeZone)}` : '';
          if (row.frozen) {
            const reason = row.window.reason ? ` (${row.window.reason})` : '';
            process.stdout.write(`${row.environment}: frozen by "${row.window.name}"${reason} until ${formatInZone(row.until.getTime(), row.window.timeZone)}${next}\n`);
          } else process.stdout.write(`${row.environment}: not frozen${row.windows === 0 ? ' (no freeze.yaml windows)' : ''}${next}\n`);
        }
      }
      process.exitCode = rows.some((r) => r.frozen) ? 1 : 0;
    } catch (err) {
      reportFailure('freeze status', err, opts.json);
    }
  });
}
