/**
 * `slipway rollback <service> --env E`: the same revert commit the controller makes on a breach, made by a
 * person: reverts the commit that introduced the running digest, quarantines the digest, moves main.
 */
import fs from 'node:fs';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { SlipwayError } from '../../lib/errors.js';
import type { LocalRevertResult } from '../../lib/rollback/index.js';

interface RollbackOptions {
  env: string;
  envs?: string;
  digest?: string;
  reason?: string;
  actor?: string;
  quarantine: boolean;
  branch: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('rollback')
    .description('roll a service back by a revert commit of the change that brought its digest')
    .argument('<service>', 'the service to roll back (the file <env>/services/<service>.yaml)')
    .requiredOption('--env <environment>', 'environment to roll back in')
    .option('--envs <path|url>', 'the environments repository: a path, or an http(s) git URL that is fetched and pushed to (default: $SLIPWAY_ENVS or the current directory)')
    .option('--digest <digest>', 'the bad digest (default: the one the service runs on main)')
    .option('--reason <text>', 'why, for the commit message and the quarantine entry')
    .option('--actor <name>', 'who asks (default: your user name)')
    .option('--no-quarantine', 'do not add the digest to quarantine.yaml')
    .option('--branch <name>', 'the branch the controller follows', 'main')
    .option('--json', 'print the result as JSON')
    .action(async (service: string, opts: RollbackOptions) => {
      const source = opts.envs ?? process.env.SLIPWAY_ENVS ?? '.';
      if (/^https?:\/\//i.test(source)) {
        await rollbackRemote(service, source, opts);
        return;
      }
      const dir = resolve(source);
      const bare = !existsSync(join(dir, '.git')) && existsSync(join(dir, 'HEAD')) && existsSync(join(dir, 'objects'));
      if (!bare && !existsSync(join(dir, '.git'))) {
        throw new SlipwayError('NO_REPOSITORY', `${dir} is not a git repository; pass the environments repository with --envs`, 'stalling', { path: dir });
      }
      const repo = bare ? { gitdir: dir } : { dir };
      const { createLocalRollback, currentDigest } = await import('../../lib/rollback/index.js');
      const actor = opts.actor ?? process.env.SLIPWAY_ACTOR ?? userInfo().username;
      const badDigest = opts.digest ?? (await currentDigest({ fs, ...repo, branch: opts.branch, environment: opts.env, service }));
      const result = await createLocalRollback({ fs, ...repo, branch: opts.branch }).revert({
        environment: opts.env,
        service,
        badDigest,
        reason: opts.reason ?? `manual rollback by ${actor}`,
        actor,
        quarantine: opts.quarantine,
      });
      report(service, badDigest, result, opts);
    });
}


/**
 * The same rollback on an http(s) environments repository: made in the mirror lib/gitprovider keeps, then
 * pushed without force; when main moved meanwhile, the mirror is fetched and the revert made again on it.
 */
async function rollbackRemote(service: string, url: string, opts: RollbackOptions): Promise<void> {
  const [{ RemoteRepo }, { createLocalRollback, currentDigest }] = await Promise.all([import('../../lib/gitprovider/index.js'), import('../../lib/rollback/index.js')]);
  const repo = await RemoteRepo.connect(url);
  const ref = `refs/heads/${opts.branch}`;
  const actor = opts.actor ?? process.env.SLIPWAY_ACTOR ?? userInfo().username;
  for (let attempt = 1; ; attempt++) {
    const before = await repo.mustResolve(ref, `the ${opts.branch} branch`);
    const badDigest = opts.digest ?? (await currentDigest({ fs, gitdir: repo.gitdir, branch: opts.branch, environment: opts.env, service }));
    const result = await createLocalRollback({ fs, gitdir: repo.gitdir, branch: opts.branch }).revert({
      environment: opts.env,
      service,
      badDigest,
      reason: opts.reason ?? `manual rollback by ${actor}`,
      actor,
      quarantine: opts.quarantine,
    });
    if (await repo.publish(ref, before)) {
      report(service, badDigest, result, opts);
      return;
    }
    if (attempt >= 5) throw new SlipwayError('REF_MOVED', `${repo.remoteUrl} ${opts.branch} kept moving while the rollback was pushed (${attempt} attempts); run the command again`, 'waiting', { repo: repo.remoteUrl });
  }
}

function report(service: string, badDigest: string, result: LocalRevertResult, opts: RollbackOptions): void {
  if (opts.json) {
    process.stdout.write(JSON.stringify({ environment: opts.env, service, badDigest, ...result }, null, 2) + '\n');
    return;
  }
  if (result.alreadyRolledBack) {
    process.stdout.write(`${service} in ${opts.env} no longer runs ${badDigest} (now ${result.restoredDigest}); nothing to do\n`);
    return;
  }
  process.stdout.write(
    [
      `rolled back ${service} in ${opts.env}: ${badDigest} -> ${result.restoredDigest}`,
      `  commit ${result.commit} on ${opts.branch}, reverts ${result.revertedCommit}${result.explicit ? ' (digest written back explicitly: the revert did not apply cleanly)' : ''}`,
      result.quarantined ? `  ${badDigest} is quarantined in quarantine.yaml` : undefined,
    ]
      .filter(Boolean)
      .join('\n') + '\n',
  );
}
