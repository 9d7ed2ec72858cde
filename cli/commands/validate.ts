/** `slipway validate`: every problem of one commit of the environments repository, with file:line:col. */
import type { Command } from 'commander';
import { fail } from './init.js';

interface ValidateOptions {
  repo?: string;
  ref?: string;
  commit?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('validate')
    .summary('validate a commit of the environments repo')
    .description(
      'Validate every file of one commit of the environments repository (read from git, not the working tree).\n' +
        'Lists every problem as file:line:col field.path: message and exits 1; exits 0 when clean, 2 when it cannot read the repository.',
    )
    .argument('[dir]', 'the environments repository (same as --repo; default: the current directory)')
    .option('--repo <path|url>', 'the environments repository: a path or an http(s) URL (default: the current directory)')
    .option('--ref <ref>', 'branch, tag or commit to validate', 'HEAD')
    .option('--commit <rev>', 'same as --ref')
    .option('--json', 'print the result as JSON')
    .action(async (dir: string | undefined, opts: ValidateOptions) => {
      try {
        const [{ loadDesiredState, openRepo, resolveRef }, { formatProblem }] = await Promise.all([import('../../lib/envrepo/index.js'), import('../../schemas/index.js')]);
        const repo = await openRepo({ repo: opts.repo ?? dir });
        const ref = opts.commit ?? opts.ref ?? 'HEAD';
        const commit = await resolveRef({ repo, ref });
        const result = await loadDesiredState({ repo, commit });
        if (!result.ok) {
          if (opts.json) process.stdout.write(`${JSON.stringify({ ok: false, repo: repo.source, ref, commit, problems: result.problems }, null, 2)}\n`);
          else {
            const n = result.problems.length;
            process.stdout.write(`${result.problems.map(formatProblem).join('\n')}\n`);
            process.stderr.write(`${n} problem${n === 1 ? '' : 's'} in ${ref} (${commit.slice(0, 12)}); nothing in this commit will be applied\n`);
          }
          process.exitCode = 1;
          return;
        }
        const environments = result.state.environments.map((e) => ({ name: e.name, services: Object.keys(e.services).sort() }));
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ ok: true, repo: repo.source, ref, commit, environments, problems: [] }, null, 2)}\n`);
          return;
        }
        const services = environments.reduce((n, e) => n + e.services.length, 0);
        process.stdout.write(`ok: ${ref} (${commit.slice(0, 12)}) is valid: ${environments.length} environments (${environments.map((e) => e.name).join(' → ')}), ${services} service files\n`);
      } catch (err) {
        fail(err, opts.json);
      }
    });
}
