/**
 * What the promotion commands share: open the provider named by the flags (`--repo <path>` for the
 * local provider, `--github owner/name` for GitHub), the verifier, the actor, the audit log, and
 * how a refusal or an error becomes an exit status.
 */
import { SlipwayError } from '../errors.js';
import { homePath } from '../home.js';
import { fileAuditLog, type AuditSink, GitHubProvider, LocalGitProvider, openRepository, readPromotionState, readSlipwayConfig, servicePath, type GitProvider, type Verifier } from '../gitprovider/index.js';
import { readDigest, readRepository } from '../bump/index.js';
import { createProvenanceVerifier } from '../provenance/index.js';
import { repoStateReader, type DesiredStateReader } from './reader.js';
import type { RepoFlags } from './flags.js';

export { actorOf, parseInstant, REPO_FLAG_HELP, reportFailure, withRepoFlags, type RepoFlags } from './flags.js';

export function auditPath(flags: RepoFlags): string {
  return flags.auditLog ?? process.env.SLIPWAY_AUDIT_LOG ?? homePath('audit', 'promotion.jsonl');
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

/**
 * The provider the flags name: `--github owner/name` (or an https://github.com/<owner>/<name> --repo) is
 * the GitHub provider; any other http(s) URL is fetched into a mirror and worked on by the local provider,
 * which pushes what it changes; a path is the local provider on that repository.
 */
export async function openProvider(flags: RepoFlags, verify: Verifier = defaultVerifier()): Promise<Opened> {
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
  const provider = new LocalGitProvider({ repo: await openRepository(flags.repo ?? '.'), verify, audit, mainBranch: flags.branch });
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
