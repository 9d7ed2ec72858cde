/**
 * The rollback on a GitHub-hosted environments repository: the same revert commit (message, trailers,
 * quarantine), written with the git data API on a branch, opened as a pull request and merged at once.
 *
 * Over the API there is no three-way merge, so the revert covers the service file: when it has not changed
 * since the introducing commit, it goes back to that commit's parent version (what `git revert` does to it);
 * otherwise the previous digest is written back explicitly. A main that moved while the pull request was open
 * is fine (the merge commit takes it in); a merge GitHub refuses because main moved is rebuilt on the new tip.
 * Never a force push.
 */
import { Octokit } from 'octokit';
import { SlipwayError } from '../errors.js';
import type { RevertRequest, RevertResult, RollbackPort } from '../gitprovider/types.js';
import { rollbackMessage } from './message.js';
import { QUARANTINE_FILE, serviceFile, type Identity } from './revert.js';
import { addQuarantineEntry, digestOf, writeDigest } from './yaml.js';

export interface GitHubRollbackOptions {
  owner: string;
  repo: string;
  token: string;
  /** `https://api.github.com`, or the API of GitHub Enterprise Server. */
  baseUrl?: string;
  mainBranch?: string;
  now?: () => Date;
  identity?: Identity;
  attempts?: number;
  /** How far back the first-parent history is searched (two API calls per commit). */
  maxDepth?: number;
  /** Called after the pull request is opened and before it is merged (tests move main here). */
  beforeMerge?: (pullNumber: number, attempt: number) => Promise<void>;
}

export interface GitHubRevertResult extends RevertResult {
  alreadyRolledBack: boolean;
  quarantined: boolean;
  /** The revert commit on the pull request's branch (`commit` is the merge commit on main). */
  revertCommit: string;
  pullRequest?: { number: number; url: string };
  attempts: number;
}

export interface GitHubRollback extends RollbackPort {
  revert(request: RevertRequest): Promise<GitHubRevertResult>;
}

function httpStatus(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'status' in err ? Number((err as { status: unknown }).status) : undefined;
}

interface FileAt {
  text: string;
  blob: string;
}

export function createGitHubRollback(options: GitHubRollbackOptions): GitHubRollback {
  const octokit = new Octokit({ auth: options.token, baseUrl: options.baseUrl ?? 'https://api.github.com', userAgent: 'slipway', retry: { enabled: false }, throttle: { enabled: false } });
  const o = { owner: options.owner, repo: options.repo };
  const main = options.mainBranch ?? 'main';
  const now = options.now ?? (() => new Date());
  const identity = options.identity ?? { name: 'Slipway', email: 'slipway@users.slipway.invalid' };
  const attempts = Math.max(1, options.attempts ?? 5);
  const maxDepth = options.maxDepth ?? 200;

  const fileAt = async (ref: string, path: string): Promise<FileAt | undefined> => {
    try {
      const { data } = await octokit.rest.repos.getContent({ ...o, path, ref });
      if (Array.isArray(data) || data.type !== 'file' || !('content' in data)) return undefined;
      return { text: Buffer.from(data.content, 'base64').toString('utf8'), blob: data.sha };
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw err;
    }
  };
  const headOf = async (): Promise<string> => (await octokit.rest.git.getRef({ ...o, ref: `heads/${main}` })).data.object.sha;

  /** Newest first-parent commit that set the digest, with the file there and before it. */
  const introducing = async (head: string, path: string, digest: string) => {
    let sha: string | undefined = head;
    let here = await fileAt(head, path);
    for (let depth = 0; sha && depth < maxDepth; depth++) {
      const commit: { message: string; parents: { sha: string }[] } = (await octokit.rest.git.getCommit({ ...o, commit_sha: sha })).data;
      const parent: string | undefined = commit.parents[0]?.sha;
      const there = parent ? await fileAt(parent, path) : undefined;
      if (here && here.blob !== there?.blob && safeDigest(here.text, path) === digest && (!there || safeDigest(there.text, path) !== digest)) {
        return { sha, subject: commit.message.split('\n', 1)[0]!, file: here, parentFile: there };
      }
      sha = parent;
      here = there;
    }
    return undefined;
  };

  return {
    async revert(request) {
      if (!/^sha256:[a-f0-9]{64}$/.test(request.badDigest)) {
        throw new SlipwayError('BAD_DIGEST', `badDigest must be a full sha256: digest, got "${request.badDigest}"`, 'stalling', { field: 'badDigest' });
      }
      const path = serviceFile(request.environment, request.service);
      for (let attempt = 1; attempt <= attempts; attempt++) {
        const head = await headOf();
        const current = await fileAt(head, path);
        if (!current) throw new SlipwayError('NO_SERVICE', `${path} does not exist on ${main}: there is no ${request.service} in ${request.environment} to roll back`, 'stalling', { file: path });
        const found = await introducing(head, path, request.badDigest);
        if (!found) throw new SlipwayError('NOT_DEPLOYED', `${request.badDigest} was never the digest of ${path} on ${main}; nothing to roll back`, 'stalling', { file: path });
        const currentDigest = digestOf(current.text, path);
        if (currentDigest !== request.badDigest) {
          return { commit: head, revertCommit: head, revertedCommit: found.sha, restoredDigest: currentDigest ?? '', explicit: false, alreadyRolledBack: true, quarantined: false, attempts: attempt };
        }
        const previous = found.parentFile ? safeDigest(found.parentFile.text, path) : undefined;
        if (!found.parentFile || !previous) {
          throw new SlipwayError('NO_PREVIOUS_DIGEST', `${path} was created with ${request.badDigest} in ${found.sha.slice(0, 12)}: there is no earlier digest to roll back to`, 'stalling', { file: path });
        }
        const untouchedSince = current.blob === found.file.blob;
        const serviceText = untouchedSince ? found.parentFile.text : writeDigest(current.text, previous, path);
        const explicitBecause = untouchedSince ? undefined : `${path} changed again after ${found.sha.slice(0, 12)}`;

        const files: { path: string; mode: '100644'; type: 'blob'; content: string }[] = [{ path, mode: '100644', type: 'blob', content: serviceText }];
        let quarantined = false;
        if (request.quarantine) {
          const q = await fileAt(head, QUARANTINE_FILE);
          const { text, added } = addQuarantineEntry(q?.text, { digest: request.badDigest, service: request.service, environment: request.environment, reason: request.reason.replace(/\s*\n\s*/g, ' ').trim(), at: now().toISOString() });
          if (added) {
            files.push({ path: QUARANTINE_FILE, mode: '100644', type: 'blob', content: text });
            quarantined = true;
          }
        }
        const message = rollbackMessage({
          environment: request.environment,
          service: request.service,
          revertedCommit: found.sha,
          revertedSubject: found.subject,
          badDigest: request.badDigest,
          restoredDigest: previous,
          reason: request.reason,
          summary: request.summary,
          actor: request.actor,
          explicitBecause,
          quarantined,
        });
        const { data: headCommit } = await octokit.rest.git.getCommit({ ...o, commit_sha: head });
        const { data: tree } = await octokit.rest.git.createTree({ ...o, base_tree: headCommit.tree.sha, tree: files });
        const date = now().toISOString().replace(/\.\d{3}Z$/, 'Z');
        const { data: commit } = await octokit.rest.git.createCommit({ ...o, message, tree: tree.sha, parents: [head], author: { ...identity, date }, committer: { ...identity, date } });
        const branch = `slipway/rollback/${request.environment}/${request.service}/${request.badDigest.slice(7, 19)}-${attempt}`;
        await octokit.rest.git.createRef({ ...o, ref: `refs/heads/${branch}`, sha: commit.sha });
        const [subject, ...body] = message.split('\n');
        const { data: pr } = await octokit.rest.pulls.create({ ...o, title: subject!, head: branch, base: main, body: body.join('\n').trim() });
        await options.beforeMerge?.(pr.number, attempt);
        try {
          const { data: merged } = await octokit.rest.pulls.merge({ ...o, pull_number: pr.number, sha: commit.sha, merge_method: 'merge', commit_title: subject!, commit_message: body.join('\n').trim() });
          return {
            commit: merged.sha,
            revertCommit: commit.sha,
            revertedCommit: found.sha,
            restoredDigest: previous,
            explicit: explicitBecause !== undefined,
            alreadyRolledBack: false,
            quarantined,
            pullRequest: { number: pr.number, url: pr.html_url },
            attempts: attempt,
          };
        } catch (err) {
          const status = httpStatus(err);
          if (status !== 405 && status !== 409) throw err;
          // Not mergeable: when main moved meanwhile, build again on its new tip; otherwise a person must look.
          if ((await headOf()) === head) {
            throw new SlipwayError('ROLLBACK_NOT_MERGEABLE', `GitHub refused to merge rollback pull request #${pr.number} (${status}): ${pr.html_url}; merge it by hand`, 'stalling', { pullRequest: pr.number });
          }
          await octokit.rest.pulls.update({ ...o, pull_number: pr.number, state: 'closed' });
          await octokit.rest.git.deleteRef({ ...o, ref: `heads/${branch}` }).catch(() => undefined);
        }
      }
      throw new SlipwayError('BRANCH_MOVED', `${main} kept moving during ${attempts} attempts to merge the rollback of ${request.environment}/${request.service}; retry`, 'waiting', { attempts });
    },
  };
}

function safeDigest(text: string, path: string): string | undefined {
  try {
    return digestOf(text, path);
  } catch {
    return undefined;
  }
}
