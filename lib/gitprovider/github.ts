/**
 * The `github` git provider: the same proposals as the local provider, made through the GitHub REST API
 * with octokit. The branch and its commit are written with the git data API (tree, commit, ref), the pull
 * request body shows old and new digest, source, builder and the verification outcome, and a check run
 * (or, when the token may not create check runs, a commit status) carries that outcome for branch
 * protection. PR reviews are the approvals. Merging goes through the same gate as the local provider
 * (verification, quarantine, approvals, freeze) and then the merge endpoint, pinned to the head commit
 * that was checked. When main moved and GitHub will not merge (405: base branch modified, out of date or
 * conflicting), the proposal branch catches up with a commit whose parents are its head and the new main
 * and whose tree is the new main with the bump re-applied: a fast-forward of the branch, never a force.
 */
import { Octokit } from 'octokit';
import { assertDigest } from '../bump/index.js';
import { SlipwayError } from '../errors.js';
import type { VerificationResult } from '../provenance/types.js';
import { noAudit, type AuditEvent, type AuditSink } from './audit.js';
import { mergeGate } from './checks.js';
import { editServiceFile, proposalCommitText } from './proposal.js';
import { parseIdentity, proposalId, type Verifier } from './local.js';
import type { Identity } from './repo.js';
import { quarantined, readPromotionState, servicePath, type FileReader, type PromotionState } from './state.js';
import { formatMessage, TRAILER, type Trailers } from './trailers.js';
import type { DigestChange, GitProvider, MergeOptions, MergeResult, Proposal, ProposalState } from './types.js';

export interface GitHubProviderOptions {
  owner: string;
  repo: string;
  /** A token with contents, pull-requests and statuses write access. */
  token: string;
  /** `https://api.github.com`, or the API of GitHub Enterprise Server. */
  baseUrl?: string;
  verify: Verifier;
  clock?: () => Date;
  audit?: AuditSink;
  mainBranch?: string;
  /** Reviewers requested on every proposal to an environment that needs approvals. */
  reviewers?: string[];
  identity?: Identity;
  maxAttempts?: number;
  /**
   * How the verification outcome is published on the proposal's head commit: `check-run` (needs a GitHub
   * App installation token; on a 403 it falls back to a commit status and says so in the pull request),
   * or `status` (a commit status only). Default `check-run`.
   */
  checks?: 'check-run' | 'status';
}

const STATUS_CONTEXT = 'slipway/provenance';
const CHECK_FALLBACK_NOTE = 'published as a commit status: check runs need a GitHub App installation token and GitHub answered 403 to this token';
const SUPERSEDED_LABEL = 'slipway:superseded';
const META = /<!-- slipway-proposal (\{.*\}) -->/;

interface ProposalMeta {
  environment: string;
  service: string;
  digest: string;
  repository: string;
  rollback: boolean;
  rollbackReason?: string;
  source?: { repo: string; ref: string; commit: string };
  provenance?: string;
}

interface PullLike {
  number: number;
  html_url: string;
  state: string;
  merged_at: string | null;
  body?: string | null;
  user: { login: string } | null;
  head: { ref: string; sha: string };
  labels: { name?: string }[];
}

function httpStatus(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'status' in err ? Number((err as { status: unknown }).status) : undefined;
}

export class GitHubProvider implements GitProvider {
  readonly kind = 'github' as const;
  readonly octokit: Octokit;
  private readonly o: { owner: string; repo: string };
  private readonly verify: Verifier;
  private readonly clock: () => Date;
  private readonly audit: AuditSink;
  private readonly main: string;
  private readonly reviewers: string[];
  private readonly identity: Identity;
  private readonly maxAttempts: number;
  private checks: 'check-run' | 'status';

  constructor(options: GitHubProviderOptions) {
    this.octokit = new Octokit({
      auth: options.token,
      baseUrl: options.baseUrl ?? 'https://api.github.com',
      userAgent: 'slipway',
      retry: { enabled: false },
      throttle: { enabled: false },
    });
    this.o = { owner: options.owner, repo: options.repo };
    this.verify = options.verify;
    this.clock = options.clock ?? (() => new Date());
    this.audit = options.audit ?? noAudit;
    this.main = options.mainBranch ?? 'main';
    this.reviewers = options.reviewers ?? [];
    this.identity = options.identity ?? { name: 'slipway', email: 'slipway@users.slipway.invalid' };
    this.maxAttempts = options.maxAttempts ?? 5;
    this.checks = options.checks ?? 'check-run';
  }

  /** Files of the repository at a commit, through the contents API. */
  readonly files: FileReader = {
    readFile: async (commit, path) => {
      try {
        const { data } = await this.octokit.rest.repos.getContent({ ...this.o, path, ref: commit });
        if (Array.isArray(data) || data.type !== 'file' || !('content' in data)) return undefined;
        return Buffer.from(data.content, 'base64').toString('utf8');
      } catch (err) {
        if (httpStatus(err) === 404) return undefined;
        throw err;
      }
    },
  };

  async mainCommit(): Promise<string> {
    const { data } = await this.octokit.rest.git.getRef({ ...this.o, ref: `heads/${this.main}` });
    return data.object.sha;
  }

  async propose(change: DigestChange): Promise<Proposal> {
    assertDigest(change.digest);
    const id = proposalId(change.environment, change.service, change.digest);
    const branch = `slipway/${id}`;
    const author = change.author ?? this.identity;
    const main = await this.mainCommit();
    const state = await readPromotionState(this.files, main, change.environment);
    const q = quarantined(state.quarantine, change.digest, change.environment, change.service);
    if (q && !change.rollback) {
      this.record({ action: 'refused', proposal: id, environment: change.environment, service: change.service, digest: change.digest, actor: author.name, code: 'QUARANTINED', reason: q.reason });
      throw new SlipwayError('QUARANTINED', `${change.digest} is quarantined (${q.reason}); it is never proposed again`, 'stalling', { entry: q });
    }
    const edit = await editServiceFile(this.files, main, change);
    if (edit.status === 'already-updated') {
      return { id, environment: change.environment, service: change.service, digest: change.digest, state: 'merged', branch: this.main, headCommit: main, author: author.name, approvals: [], alreadyUpdated: true };
    }
    const { path, content, previousDigest } = edit;
    const existing = await this.pullForBranch(branch, 'open');
    if (existing) return this.toProposal(existing);

    const verification = await this.verify({ repository: change.repository, digest: change.digest, service: change.service, policy: state.config.spec.trust, publicKeys: state.publicKeys, now: this.clock() });
    const { subject, trailers } = proposalCommitText(change, edit.previousDigest);
    const { data: tree } = await this.octokit.rest.git.createTree({ ...this.o, base_tree: (await this.commitTree(main)), tree: [{ path, mode: '100644', type: 'blob', content }] });
    const at = this.clock().toISOString();
    const { data: commit } = await this.octokit.rest.git.createCommit({
      ...this.o,
      message: formatMessage(subject, change.message, trailers),
      tree: tree.sha,
      parents: [main],
      author: { name: author.name, email: author.email, date: at },
      committer: { name: this.identity.name, email: this.identity.email, date: at },
    });
    try {
      await this.octokit.rest.git.createRef({ ...this.o, ref: `refs/heads/${branch}`, sha: commit.sha });
    } catch (err) {
      if (httpStatus(err) !== 422) throw err;
      // A branch left by an earlier, closed attempt (no open pull request uses it): replace it.
      await this.octokit.rest.git.deleteRef({ ...this.o, ref: `heads/${branch}` });
      await this.octokit.rest.git.createRef({ ...this.o, ref: `refs/heads/${branch}`, sha: commit.sha });
    }

    const meta: ProposalMeta = {
      environment: change.environment,
      service: change.service,
      digest: change.digest,
      repository: change.repository,
      rollback: Boolean(change.rollback),
      rollbackReason: change.rollback ? change.message?.split('\n')[0] : undefined,
      source: change.source,
      provenance: change.provenance,
    };
    const published = await this.publishVerification(commit.sha, verification);
    const { data: pr } = await this.octokit.rest.pulls.create({
      ...this.o,
      title: subject,
      head: branch,
      base: this.main,
      body: pullBody(meta, previousDigest, verification, published),
    });
    await this.octokit.rest.issues.addLabels({ ...this.o, issue_number: pr.number, labels: ['slipway', `env:${change.environment}`, ...(change.rollback ? ['rollback'] : [])] });
    const needed = state.environment.spec.approvals?.required ?? 0;
    const reviewers = this.reviewers.filter((r) => r.toLowerCase() !== (pr.user?.login ?? '').toLowerCase());
    if (needed > 0 && reviewers.length > 0) await this.octokit.rest.pulls.requestReviewers({ ...this.o, pull_number: pr.number, reviewers });
    if (state.environment.spec.autoMerge && verification.ok && needed === 0) await this.enableAutoMerge(pr.number);
    this.record({ action: 'proposed', proposal: id, environment: change.environment, service: change.service, digest: change.digest, actor: author.name, commit: commit.sha, pull: pr.number });
    await this.supersedeOthers(id, change.environment, change.service, pr.number);
    return this.toProposal((await this.octokit.rest.pulls.get({ ...this.o, pull_number: pr.number })).data);
  }

  async approve(id: string, approver: string): Promise<Proposal> {
    const pr = await this.find(id);
    const p = await this.toProposal(pr);
    if (p.state !== 'open') throw new SlipwayError('NOT_OPEN', `proposal ${p.id} is ${p.state}; only an open proposal can be approved`, 'stalling', { state: p.state });
    const who = parseIdentity(approver);
    try {
      await this.octokit.rest.pulls.createReview({ ...this.o, pull_number: pr.number, event: 'APPROVE', body: `Approved with slipway by ${who.name}.` });
    } catch (err) {
      if (httpStatus(err) === 422) {
        this.record({ action: 'refused', proposal: p.id, environment: p.environment, service: p.service, digest: p.digest, actor: who.name, code: 'SELF_APPROVAL' });
        throw new SlipwayError('SELF_APPROVAL', `GitHub refused the review: ${(err as Error).message}; the author cannot approve their own proposal`, 'stalling', { pull: pr.number });
      }
      throw err;
    }
    this.record({ action: 'approved', proposal: p.id, environment: p.environment, service: p.service, digest: p.digest, actor: who.name, pull: pr.number });
    return this.toProposal(pr);
  }

  async merge(id: string, options: MergeOptions): Promise<MergeResult> {
    const actor = parseIdentity(options.actor);
    for (let attempt = 1; ; attempt++) {
      const pr = await this.find(id);
      const p = await this.toProposal(pr);
      const meta = metaOf(pr);
      const main = await this.mainCommit();
      const now = options.now ?? this.clock();
      const state: PromotionState = await readPromotionState(this.files, main, p.environment);
      const gateInput = { proposal: p, rollback: meta.rollback, state, now, override: options.override };
      let gate = mergeGate(gateInput);
      let verification: VerificationResult | undefined;
      if (gate.allowed) {
        verification = await this.verify({ repository: meta.repository, digest: p.digest, service: p.service, policy: state.config.spec.trust, publicKeys: state.publicKeys, now });
        gate = mergeGate({ ...gateInput, verification });
      }
      if (!gate.allowed) {
        this.record({ action: 'refused', proposal: p.id, environment: p.environment, service: p.service, digest: p.digest, actor: actor.name, code: gate.reason, reason: gate.message, pull: pr.number });
        throw new SlipwayError(gate.reason, gate.message, gate.reason === 'FROZEN' || gate.reason === 'APPROVALS_MISSING' ? 'waiting' : 'stalling', { proposal: p.id, ...gate.data });
      }
      const trailers: Trailers = [
        [TRAILER.proposal, p.id],
        [TRAILER.environment, p.environment],
        [TRAILER.service, p.service],
        [TRAILER.image, `${meta.repository}@${p.digest}`],
        [TRAILER.provenance, meta.provenance ?? ''],
        [TRAILER.sourceCommit, meta.source?.commit ?? ''],
        [TRAILER.mergedBy, `${actor.name} <${actor.email}>`],
        ...p.approvals.map((a): [string, string] => [TRAILER.approvedBy, a]),
      ];
      if (meta.rollback) trailers.push([TRAILER.rollback, meta.rollbackReason ?? 'yes']);
      if (gate.override) trailers.push([TRAILER.freezeOverride, `${gate.override.reason} (window "${gate.override.window.name}")`]);
      const message = formatMessage('x', undefined, trailers).split('\n\n').slice(1).join('\n\n');
      try {
        const { data } = await this.octokit.rest.pulls.merge({
          ...this.o,
          pull_number: pr.number,
          sha: pr.head.sha,
          merge_method: 'merge',
          commit_title: `Merge ${p.id} (#${pr.number}): ${p.service} ${p.digest.slice(0, 19)} into ${p.environment}`,
          commit_message: message,
        });
        const base = { proposal: p.id, environment: p.environment, service: p.service, digest: p.digest, actor: actor.name, commit: data.sha, pull: pr.number };
        if (gate.override) this.record({ ...base, action: 'override', reason: gate.override.reason, window: gate.override.window.name });
        this.record({ ...base, action: 'merged', attempts: attempt });
        return { proposal: { ...p, state: 'merged' }, mergeCommit: data.sha };
      } catch (err) {
        // 409: the head moved since it was checked (read it again). 405: GitHub will not merge it as it is:
        // main moved (base modified, branch out of date, or now conflicting), or something else blocks it.
        const status = httpStatus(err);
        if (status !== 409 && status !== 405) throw err;
        const said = githubMessage(err);
        if (attempt >= this.maxAttempts) {
          throw new SlipwayError('REF_MOVED', `GitHub did not merge #${pr.number} after ${attempt} attempts: ${said}; run the command again`, 'waiting', { pull: pr.number, status });
        }
        if (status === 405 && !(await this.catchUp(pr, p, meta, verification!)) && !/base branch was modified/i.test(said)) {
          // The branch already holds main, so main moving is not why: checks, reviews or rules block it.
          this.record({ action: 'refused', proposal: p.id, environment: p.environment, service: p.service, digest: p.digest, actor: actor.name, code: 'NOT_MERGEABLE', reason: said, pull: pr.number });
          throw new SlipwayError('NOT_MERGEABLE', `GitHub will not merge #${pr.number}: ${said} (see the pull request for failing checks, required reviews or branch rules)`, 'waiting', { pull: pr.number });
        }
      }
    }
  }

  async status(id: string): Promise<Proposal> {
    return this.toProposal(await this.find(id));
  }

  /**
   * Bring the proposal branch up to the current main, when it is behind: one commit whose parents are the
   * branch head and main, whose tree is main with the digest bump re-applied to main's version of the
   * service file (so a person's edit of another field on main is kept), moved onto the branch as a
   * fast-forward. The verification outcome is published on the new head too. False when the branch
   * already holds main.
   */
  private async catchUp(pr: PullLike, p: Proposal, meta: ProposalMeta, verification: VerificationResult): Promise<boolean> {
    const main = await this.mainCommit();
    const { data: head } = await this.octokit.rest.git.getCommit({ ...this.o, commit_sha: pr.head.sha });
    if (pr.head.sha === main || head.parents.some((parent) => parent.sha === main)) return false;
    const edit = await editServiceFile(this.files, main, { environment: p.environment, service: p.service, digest: p.digest, repository: meta.repository });
    const mainTree = await this.commitTree(main);
    const tree =
      edit.status === 'already-updated'
        ? mainTree
        : (await this.octokit.rest.git.createTree({ ...this.o, base_tree: mainTree, tree: [{ path: edit.path, mode: '100644', type: 'blob', content: edit.content }] })).data.sha;
    const at = this.clock().toISOString();
    const { data: commit } = await this.octokit.rest.git.createCommit({
      ...this.o,
      message: formatMessage(`Update ${p.id} to ${this.main} ${main.slice(0, 12)}`, `${this.main} moved after the proposal was made; the bump is re-applied to its current ${servicePath(p.environment, p.service)}.`, [[TRAILER.proposal, p.id]]),
      tree,
      parents: [pr.head.sha, main],
      author: { name: this.identity.name, email: this.identity.email, date: at },
      committer: { name: this.identity.name, email: this.identity.email, date: at },
    });
    // Not forced: the new commit has the old head as its first parent. A 422 means the branch moved meanwhile; the caller reads it again.
    await this.octokit.rest.git.updateRef({ ...this.o, ref: `heads/${pr.head.ref}`, sha: commit.sha, force: false }).catch((err: unknown) => {
      if (httpStatus(err) !== 422) throw err;
    });
    await this.publishVerification(commit.sha, verification);
    return true;
  }

  /** A check run with the verification outcome on `sha`, or a commit status when the token may not create check runs. */
  private async publishVerification(sha: string, v: VerificationResult): Promise<'check-run' | 'status'> {
    const title = v.ok ? 'Provenance verified' : `Provenance refused: ${v.code}`;
    if (this.checks === 'check-run') {
      const summary = v.ok
        ? `Signed by key \`${v.provenance.keyName}\`, built by \`${v.provenance.builderId}\` from \`${v.provenance.sourceRepo}\` @ \`${v.provenance.sourceCommit}\`.`
        : `**${v.code}**: ${v.message}\n\nSlipway will not merge this proposal until the image's provenance verifies against the trust policy in slipway.yaml.`;
      try {
        await this.octokit.rest.checks.create({
          ...this.o,
          name: STATUS_CONTEXT,
          head_sha: sha,
          status: 'completed',
          conclusion: v.ok ? 'success' : 'failure',
          completed_at: this.clock().toISOString(),
          output: { title, summary },
        });
        return 'check-run';
      } catch (err) {
        if (httpStatus(err) !== 403) throw err;
        // Personal access tokens and OAuth tokens may not create check runs; do not ask again with this token.
        this.checks = 'status';
      }
    }
    await this.octokit.rest.repos.createCommitStatus({
      ...this.o,
      sha,
      state: v.ok ? 'success' : 'failure',
      context: STATUS_CONTEXT,
      description: (v.ok ? `verified: ${v.provenance.builderId} signed by ${v.provenance.keyName}` : `${v.code}: ${v.message}`).slice(0, 140),
    });
    return 'status';
  }

  async list(filter: { environment?: string; service?: string; state?: ProposalState } = {}): Promise<Proposal[]> {
    const pulls = await this.octokit.paginate(this.octokit.rest.pulls.list, { ...this.o, state: 'all', base: this.main, per_page: 100 });
    const out: Proposal[] = [];
    for (const pr of pulls as PullLike[]) {
      if (!pr.head.ref.startsWith('slipway/') || !META.test(pr.body ?? '')) continue;
      const p = await this.toProposal(pr, filter.state === undefined || filter.state === 'open');
      if (filter.environment && p.environment !== filter.environment) continue;
      if (filter.service && p.service !== filter.service) continue;
      if (filter.state && p.state !== filter.state) continue;
      out.push(p);
    }
    return out.sort((a, b) => a.id.localeCompare(b.id) || (a.number ?? 0) - (b.number ?? 0));
  }

  private async enableAutoMerge(pullNumber: number): Promise<void> {
    const { data: repo } = await this.octokit.rest.repos.get(this.o);
    if (!repo.allow_auto_merge) return;
    const { data: pr } = await this.octokit.rest.pulls.get({ ...this.o, pull_number: pullNumber });
    await this.octokit.graphql(
      `mutation($id: ID!) { enablePullRequestAutoMerge(input: { pullRequestId: $id, mergeMethod: MERGE }) { pullRequest { number autoMergeRequest { enabledAt } } } }`,
      { id: pr.node_id },
    );
  }

  private async supersedeOthers(newId: string, environment: string, service: string, newNumber: number): Promise<void> {
    const prefix = `slipway/${environment}/${service}-`;
    const open = await this.octokit.paginate(this.octokit.rest.pulls.list, { ...this.o, state: 'open', base: this.main, per_page: 100 });
    for (const pr of open as PullLike[]) {
      if (pr.number === newNumber || !pr.head.ref.startsWith(prefix)) continue;
      const older = metaOf(pr);
      await this.octokit.rest.issues.createComment({ ...this.o, issue_number: pr.number, body: `Superseded by #${newNumber} (${newId}); closing.` });
      await this.octokit.rest.issues.addLabels({ ...this.o, issue_number: pr.number, labels: [SUPERSEDED_LABEL] });
      await this.octokit.rest.pulls.update({ ...this.o, pull_number: pr.number, state: 'closed' });
      await this.octokit.rest.git.deleteRef({ ...this.o, ref: `heads/${pr.head.ref}` }).catch((err: unknown) => {
        if (httpStatus(err) !== 422 && httpStatus(err) !== 404) throw err;
      });
      this.record({ action: 'superseded', proposal: pr.head.ref.slice('slipway/'.length), environment, service, digest: older.digest, actor: this.identity.name, reason: `superseded by ${newId}`, pull: pr.number });
    }
  }

  private async commitTree(commit: string): Promise<string> {
    return (await this.octokit.rest.git.getCommit({ ...this.o, commit_sha: commit })).data.tree.sha;
  }

  private async pullForBranch(branch: string, state: 'open' | 'all'): Promise<PullLike | undefined> {
    const { data } = await this.octokit.rest.pulls.list({ ...this.o, state, head: `${this.o.owner}:${branch}`, per_page: 100 });
    // The newest pull request for the branch is the proposal (an older one may be a closed earlier attempt).
    return (data as PullLike[]).sort((a, b) => b.number - a.number)[0];
  }

  private async find(id: string): Promise<PullLike> {
    const number = /^#?(\d+)$/.exec(id.trim());
    if (number) return (await this.octokit.rest.pulls.get({ ...this.o, pull_number: Number(number[1]) })).data as PullLike;
    const clean = id.replace(/^refs\/heads\//, '').replace(/^slipway\//, '');
    const pr = await this.pullForBranch(`slipway/${clean}`, 'all');
    if (!pr) throw new SlipwayError('PROPOSAL_NOT_FOUND', `no pull request for proposal "${id}" (expected <env>/<service>-<short digest> or #<number>)`, 'stalling', { id });
    return pr;
  }

  private async toProposal(pr: PullLike, withApprovals = true): Promise<Proposal> {
    const meta = metaOf(pr);
    const author = pr.user?.login ?? 'unknown';
    let state: ProposalState;
    if (pr.merged_at) state = 'merged';
    else if (pr.state === 'open') state = 'open';
    else state = pr.labels.some((l) => l.name === SUPERSEDED_LABEL) ? 'superseded' : 'closed';
    return {
      id: pr.head.ref.replace(/^slipway\//, ''),
      environment: meta.environment,
      service: meta.service,
      digest: meta.digest,
      state,
      branch: pr.head.ref,
      headCommit: pr.head.sha,
      author,
      approvals: withApprovals ? await this.approvals(pr.number, author) : [],
      url: pr.html_url,
      number: pr.number,
    };
  }

  /** Users whose latest review is an approval, without the author. */
  private async approvals(pullNumber: number, author: string): Promise<string[]> {
    const reviews = await this.octokit.paginate(this.octokit.rest.pulls.listReviews, { ...this.o, pull_number: pullNumber, per_page: 100 });
    const latest = new Map<string, string>();
    for (const r of reviews) {
      const login = r.user?.login;
      if (!login || login.toLowerCase() === author.toLowerCase()) continue;
      if (r.state === 'COMMENTED') continue;
      latest.set(login, r.state);
    }
    return [...latest].filter(([, s]) => s === 'APPROVED').map(([login]) => login);
  }

  private record(event: Omit<AuditEvent, 'at' | 'provider'>): void {
    this.audit.append({ at: this.clock().toISOString(), provider: 'github', ...event } as AuditEvent);
  }
}

function metaOf(pr: PullLike): ProposalMeta {
  const m = META.exec(pr.body ?? '');
  if (!m) throw new SlipwayError('NOT_A_PROPOSAL', `pull request #${pr.number} was not opened by Slipway (no proposal data in its body)`, 'stalling', { pull: pr.number });
  return JSON.parse(m[1]!) as ProposalMeta;
}

/** GitHub's own words from an error answer (`message`), without octokit's decoration. */
function githubMessage(err: unknown): string {
  const data = (err as { response?: { data?: { message?: unknown } } }).response?.data;
  return typeof data?.message === 'string' ? data.message : (err as Error).message;
}

function pullBody(meta: ProposalMeta, previousDigest: string | undefined, v: VerificationResult, published: 'check-run' | 'status'): string {
  const source = meta.source ? `\`${meta.source.repo}\` @ \`${meta.source.commit}\` (${meta.source.ref})` : 'unknown';
  const verification = v.ok
    ? `✅ verified — signed by key \`${v.provenance.keyName}\`, built by \`${v.provenance.builderId}\` from \`${v.provenance.sourceRepo}\` @ \`${v.provenance.sourceCommit}\``
    : `❌ **${v.code}** — ${v.message}`;
  return [
    `Slipway proposes a new image for **${meta.service}** in **${meta.environment}**${meta.rollback ? ' (rollback)' : ''}.`,
    '',
    '| | digest |',
    '| --- | --- |',
    `| old | \`${previousDigest ?? '(new service)'}\` |`,
    `| new | \`${meta.digest}\` |`,
    '',
    `- **Image:** \`${meta.repository}@${meta.digest}\``,
    `- **Source:** ${source}`,
    `- **Builder:** ${v.ok ? `\`${v.provenance.builderId}\`` : 'not verified'}`,
    `- **Verification:** ${verification}`,
    `- **Provenance:** ${meta.provenance ? `\`${meta.provenance}\`` : 'not given'}`,
    `- **Check:** \`${STATUS_CONTEXT}\` ${published === 'check-run' ? 'check run' : `(${CHECK_FALLBACK_NOTE})`}`,
    '',
    'Merging this pull request deploys the new digest; reverting the merge commit rolls it back.',
    '',
    `<!-- slipway-proposal ${JSON.stringify(meta)} -->`,
  ].join('\n');
}
