/**
 * What the promotion commands share: open the provider named by the flags (`--repo <path>` for the
 * local provider, `--github owner/name` for GitHub), the verifier, the actor, the audit log, and
 * how a refusal or an error becomes an exit status.
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { SlipwayError, errorMessage, isSlipwayError } from '../errors.js';
import { homePath } from '../home.js';
import { fileAuditLog, type AuditSink, GitHubProvider, LocalGitProvider, readPromotionState, readSlipwayConfig, servicePath, type GitProvider, type Verifier } from '../gitprovider/index.js';
import { readDigest, readRepository } from '../bump/index.js';
import { createProvenanceVerifier } from '../provenance/index.js';
import { repoStateReader, type DesiredStateReader } from './reader.js';

export interface RepoFlags {
  repo?: string;
  github?: string;
  githubApi?: string;
  auditLog?: string;
  branch?: string;
}

export const REPO_FLAG_HELP = {
  repo: ['--repo <path|url>', 'the environments repository: a path on disk (bare or not), or https://github.com/<owner>/<name> (default: the current directory)'],
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

export function auditPath(flags: RepoFlags): string {
  return flags.auditLog ?? process.env.SLIPWAY_AUDIT_LOG ?? homePath('audit', 'promotion.jsonl');
}

export function actorOf(as: string | undefined): string {
  const actor = as ?? process.env.SLIPWAY_ACTOR ?? userInfo().username;
  if (!actor.trim()) throw new SlipwayError('NO_ACTOR', 'say who you are with --as "Name <email>" (or SLIPWAY_ACTOR)', 'stalling', {});
  return actor;
}

/** The sigstore verifier of lib/provenance, reading attestations from the image's own registry or OCI layout. */
export function defaultVerifier(): Verifier {
  const verifier = createProvenanceVerifier({ cache: false });
  return (req) => verifier.verify(req);
}

export interface Opened {
  provider: GitProvider;
  reader: DesiredStateReader;
  verify: Verifier;
  audit: AuditSink;
}

export function openProvider(flags: RepoFlags, verify: Verifier = defaultVerifier()): Opened {
  const audit = fileAuditLog(auditPath(flags));
  const fromUrl = flags.repo ? /^https:\/\/github\.com\/([^/\s]+)\/([^/\s]+?)(?:\.git)?\/?$/.exec(flags.repo) : null;
  if (fromUrl) flags = { ...flags, repo: undefined, github: `${fromUrl[1]}/${fromUrl[2]}` };
  if (flags.github) {
    const m = /^([^/\s]+)\/([^/\s]+)$/.exec(flags.github);
    if (!m) throw new SlipwayError('BAD_FLAG', `--github "${flags.github}" must be owner/name`, 'stalling', {});
    const token = process.env.GITHUB_TOKEN;
    if (!token) throw new SlipwayError('NO_TOKEN', 'the github provider needs a token in GITHUB_TOKEN', 'stalling', {});
    const provider = new GitHubProvider({ owner: m[1]!, repo: m[2]!, token, baseUrl: flags.githubApi, verify, audit, mainBranch: flags.branch });
    return { provider, reader: githubStateReader(provider), verify, audit };
  }
  const provider = new LocalGitProvider({ repo: flags.repo ?? '.', verify, audit, mainBranch: flags.branch });
  return { provider, reader: repoStateReader(provider.repo, flags.branch), verify, audit };
}

export function githubStateReader(provider: GitHubProvider): DesiredStateReader {
  return {
    async environments() {
      return (await readSlipwayConfig(provider.files, await provider.mainCommit())).spec.environments;
    },
    async state(environment) {
      return readPromotionState(provider.files, await provider.mainCommit(), environment);
    },
    async image(environment, service) {
      const commit = await provider.mainCommit();
      const path = servicePath(environment, service);
      const text = await provider.files.readFile(commit, path);
      if (text === undefined) return undefined;
      const digest = readDigest(text, path);
      const repository = readRepository(text, path);
      return digest && repository ? { digest, repository, commit } : undefined;
    },
  };
}

/** Gate refusals and policy refusals exit 1; everything else that went wrong (bad input, IO) exits 2. */
const REFUSALS = new Set(['NOT_OPEN', 'NOT_VERIFIED', 'QUARANTINED', 'APPROVALS_MISSING', 'FROZEN', 'SELF_APPROVAL', 'WRONG_DIRECTION']);

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
