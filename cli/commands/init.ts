/** `slipway init <dir>`: a new environments repository with a first commit and a trusted signing key. */
import type { Command } from 'commander';
import { errorMessage, isSlipwayError } from '../../lib/errors.js';

export function register(program: Command): void {
  program
    .command('init')
    .summary('create an environments repo and a signing key')
    .description(
      'Create an environments repository at <dir> from the example (staging + production, one service, a freeze window):\n' +
        'a git repository with a first commit whose trust policy names the public half of the default signing key\n' +
        '($SLIPWAY_HOME/keys/slipway.key, ECDSA P-256, created if missing, never overwritten, never inside the repository).',
    )
    .argument('<dir>', 'directory to create (must be absent or empty)')
    .option('--branch <name>', 'name of the first branch', 'main')
    .option('--json', 'print the result as JSON')
    .action(async (dir: string, opts: { branch: string; json?: boolean }) => {
      try {
        const { initEnvironmentsRepo } = await import('../../lib/envrepo/index.js');
        const result = await initEnvironmentsRepo({ dir, branch: opts.branch });
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ ok: true, ...result }, null, 2)}\n`);
          return;
        }
        const lines = [
          `created environments repository ${result.dir} (${result.branch} at ${result.commit.slice(0, 12)}, ${result.files.length} files)`,
          `${result.key.created ? 'created' : 'reused'} signing key ${result.key.privateKeyPath} (ECDSA P-256, sha256:${result.key.fingerprint.slice(0, 16)})`,
          `trusted as "${result.key.name}" by ${result.key.publicKeyFile} in slipway.yaml`,
          `next: cd ${dir} && slipway validate`,
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      } catch (err) {
        fail(err, opts.json);
      }
    });
}

/** Report a failure as one sentence (or JSON) and exit 2; never a stack trace. */
export function fail(err: unknown, json: boolean | undefined): void {
  const error = isSlipwayError(err) ? err.toJSON() : { code: 'ERROR', message: errorMessage(err) };
  if (json) process.stdout.write(`${JSON.stringify({ ok: false, error }, null, 2)}\n`);
  else process.stderr.write(`slipway: ${String(error.message)}\n`);
  process.exitCode = 2;
}
