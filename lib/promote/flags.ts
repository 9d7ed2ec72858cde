/**
 * The light half of the promotion commands' helpers: the repository flags, the actor, instants and how a
 * failure becomes an exit status. Nothing here loads git, GitHub or sigstore, so the CLI can declare these
 * commands at startup and load the rest (cli.ts) only when one of them runs.
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { SlipwayError, errorMessage, isSlipwayError } from '../errors.js';

export interface RepoFlags {
  repo?: string;
  github?: string;
  githubApi?: string;
  auditLog?: string;
  branch?: string;
}

export const REPO_FLAG_HELP = {
  repo: [
    '--repo <path|url>',
    'the environments repository: a path on disk (bare or not), an http(s) git URL (fetched, then pushed; token from SLIPWAY_GIT_TOKEN), or https://github.com/<owner>/<name> for the GitHub provider (default: the current directory)',
  ],
  github: ['--github <owner/name>', 'use the GitHub provider for this repository (token from GITHUB_TOKEN)'],
  githubApi: ['--github-api <url>', 'GitHub API base URL (default https://api.github.com; GitHub Enterprise: https://host/api/v3)'],
  auditLog: ['--audit-log <path>', 'append audit events here (default $SLIPWAY_AUDIT_LOG or $SLIPWAY_HOME/audit/promotion.jsonl)'],
  branch: ['--branch <name>', 'the main branch of the environments repository', 'main'],
} as const;

/** Add --repo, --github, --github-api, --audit-log and --branch to a command. */
export function withRepoFlags(command: Command): Command {
  for (const [, spec] of Object.entries(REPO_FLAG_HELP)) {
    const [flag, description, fallback] = spec as readonly [string, string, string?];
    if (fallback !== undefined) command.option(flag, description, fallback);
    else command.option(flag, description);
  }
  return command;
}

export function actorOf(as: string | undefined): string {
  const actor = as ?? process.env.SLIPWAY_ACTOR ?? userInfo().username;
  if (!actor.trim()) throw new SlipwayError('NO_ACTOR', 'say who you are with --as "Name <email>" (or SLIPWAY_ACTOR)', 'stalling', {});
  return actor;
}

/** Gate refusals and policy refusals exit 1; everything else that went wrong (bad input, IO) exits 2. */
const REFUSALS = new Set(['NOT_OPEN', 'NOT_VERIFIED', 'QUARANTINED', 'APPROVALS_MISSING', 'FROZEN', 'SELF_APPROVAL', 'WRONG_DIRECTION', 'NOT_MERGEABLE']);

export function reportFailure(command: string, err: unknown, json: boolean | undefined): void {
  const error = isSlipwayError(err) ? err.toJSON() : { code: 'ERROR', message: errorMessage(err) };
  if (json) process.stdout.write(`${JSON.stringify({ ok: false, error }, null, 2)}\n`);
  else process.stderr.write(`slipway ${command}: ${String(error.message)}\n`);
  process.exitCode = isSlipwayError(err) && REFUSALS.has(err.code) ? 1 : 2;
}

export function parseInstant(text: string | undefined, flag: string): Date | undefined {
  if (text === undefined) return undefined;
  const t = Date.parse(text);
  if (Number.isNaN(t) || !/(Z|[+-]\d{2}:?\d{2})$/.test(text.trim())) {
    throw new SlipwayError('BAD_TIME', `${flag} "${text}" is not an instant with a zone, e.g. 2026-12-24T18:00:00+01:00 or 2026-12-24T17:00:00Z`, 'stalling', {});
  }
  return new Date(t);
}
