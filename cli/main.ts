/** `slipway`: one entry, a file per command under cli/commands/, each registering itself on the program. */
import { Command } from 'commander';
import { registerCommands } from './commands/index.js';

const program = new Command('slipway')
  .description('GitOps delivery where git stays the truth')
  .version('0.1.0')
  .showHelpAfterError()
  .configureHelp({ helpWidth: 120 });

registerCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`slipway: ${message}\n`);
  process.exitCode = process.exitCode || 2;
});
