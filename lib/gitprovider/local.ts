/**
 * The `local` git provider: the environments repository is a git repository on disk. A proposal is a
 * branch `slipway/<env>/<service>-<short digest>` holding one commit that bumps the digest, with the
 * image, provenance and source in trailers; approvals are commits on that branch with a
 * `Slipway-Approved-By:` trailer; a merge is an ordinary two-parent merge commit on main. Nothing here
 * needs Slipway to be read back: `git log --format=%(trailers)`, `git merge slipway/...` by a person and
 * `git branch --merged` all see the same facts. Refs only ever move forward by compare-and-swap; when main
 * moved underneath a merge, the merge is rebuilt on the new main and tried again, never forced.
 */
import { assertDigest, bumpDigest } from '../bump/index.js';
import { SlipwayError } from '../errors.js';
import type { VerificationResult, VerifyRequest } from '../provenance/types.js';
import { noAudit, type AuditEvent, type AuditSink } from './audit.js';
import { mergeGate, type RefusalReason } from './checks.js';
import { editServiceFile, proposalCommitText } from './proposal.js';
import { Repo, type Identity } from './repo.js';
import { quarantined, readPromotionState, servicePath } from './state.js';
import { formatMessage, parseTrailers, TRAILER, trailer, trailerAll, type Trailers } from './trailers.js';
import type { DigestChange, GitProvider, MergeOptions, MergeResult, Proposal, ProposalState } from './types.js';

export type Verifier = (request: VerifyRequest) => Promise<VerificationResult>;

export interface LocalProviderOptions {
  /** Path of the environments repository (bare or with a working tree), or an opened Repo. */
  repo: string | Repo;
  /** Checks the signed provenance of a digest against the trust policy of the repository. */
  verify: Verifier;
  clock?: () => Date;
  audit?: AuditSink;
  mainBranch?: string;
  /** Who Slipway commits as when no person is named. */
  identity?: Identity;
  /** How often a merge is rebuilt when main moved underneath it. */
  maxAttempts?: number;
  /** Runs after main was read and before it is moved (lets tests make main move at exactly that moment). */
  beforeRefUpdate?: (ref: string) => Promise<void> | void;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const OPEN_PREFIX = 'refs/heads/slipway/';
const CLOSED_PREFIX = 'refs/slipway/closed/';

/** `Alice Doe <alice@example.com>` or a bare name (which gets a placeholder address). */
export function parseIdentity(text: string): Identity {
  const m = /^\s*(.*?)\s*<([^>]+)>\s*$/.exec(text);
  if (m && m[1]) return { name: m[1], email: m[2]! };
  const name = text.trim();
  if (!name) throw new SlipwayError('BAD_IDENTITY', 'a name is required (e.g. --as "Alice <alice@example.com>")', 'stalling', {});
  return { name, email: `${name.toLowerCase().replace(/[^a-z0-9._-]+/g, '.')}@users.slipway.invalid` };
}

export function proposalId(environment: string, service: string, digest: string): string {
  return `${environment}/${service}-${digest.slice('sha256:'.length, 'sha256:'.length + 12)}`;
}

/** Everything a proposal branch says, read from its commits. */
interface ProposalRecord {
  proposal: Proposal;
  ref: string;
  proposalCommit: string;
  trailers: Trailers;
  repository: string;
  rollback: boolean;
}

export class LocalGitProvider implements GitProvider {
  readonly kind = 'local' as const;
  readonly repo: Repo;
  private readonly verify: Verifier;
  private readonly clock: () => Date;
  private readonly audit: AuditSink;
  private readonly main: string;
  private readonly identity: Identity;
  private readonly maxAttempts: number;
  private readonly beforeRefUpdate?: (ref: string) => Promise<void> | void;

  constructor(options: LocalProviderOptions) {
    this.repo = typeof options.repo === 'string' ? Repo.open(options.repo) : options.repo;
    this.verify = options.verify;
    this.clock = options.clock ?? (() => new Date());
    this.audit = options.audit ?? noAudit;
    this.main = `refs/heads/${options.mainBranch ?? 'main'}`;
    this.identity = options.identity ?? { name: 'slipway', email: 'slipway@users.slipway.invalid' };
    this.maxAttempts = options.maxAttempts ?? 8;
    this.beforeRefUpdate = options.beforeRefUpdate;
  }

  async propose(change: DigestChange): Promise<Proposal> {
    assertDigest(change.digest);
    for (const [what, value] of [['environment', change.environment], ['service', change.service]] as const) {
      if (!NAME.test(value)) throw new SlipwayError('BAD_NAME', `${what} "${value}" is not a valid name (lowercase letters, digits and '-')`, 'stalling', { [what]: value });
    }
    const id = proposalId(change.environment, change.service, change.digest);
    const author = change.author ?? this.identity;
    for (let attempt = 1; ; attempt++) {
      const main = await this.repo.mustResolve(this.main, 'the main branch');
      const state = await readPromotionState(this.repo, main, change.environment);
      const q = quarantined(state.quarantine, change.digest, change.environment, change.service);
      if (q && !change.rollback) {
        this.record({ action: 'refused', proposal: id, environment: change.environment, service: change.service, digest: change.digest, actor: author.name, code: 'QUARANTINED', reason: q.reason });
        throw new SlipwayError('QUARANTINED', `${change.digest} is quarantined (${q.reason}); it is never proposed again`, 'stalling', { entry: q });
      }

      const edit = await editServiceFile(this.repo, main, change);
      if (edit.status === 'already-updated') {
        return {
          id,
          environment: change.environment,
          service: change.service,
          digest: change.digest,
          state: 'merged',
          branch: this.main.slice('refs/heads/'.length),
          headCommit: main,
          author: author.name,
          approvals: [],
          alreadyUpdated: true,
        };
      }
      const ref = `${OPEN_PREFIX}${id}`;
      const existing = await this.repo.resolve(ref);
      if (existing) {
        const record = await this.read(ref);
        if (record.proposal.state === 'open') return record.proposal;
      }

      const { subject, trailers } = proposalCommitText(change, edit.previousDigest);
      const commit = await this.repo.writeCommit({
        tree: await this.repo.treeWithFile(main, edit.path, edit.content),
        parents: [main],
        message: formatMessage(subject, change.message, trailers),
        author,
        committer: this.identity,
        at: await this.proposalTime(change.environment, change.service),
      });
      if (!(await this.repo.compareAndSwap(ref, existing, commit))) {
        if (attempt >= this.maxAttempts) throw this.raced(ref);
        continue;
      }
      const record = await this.read(ref);
      this.record({ action: 'proposed', proposal: id, environment: change.environment, service: change.service, digest: change.digest, actor: author.name, commit });
      await this.supersedeOlder(record.proposal.environment, record.proposal.service);
      return (await this.find(id)).proposal;
    }
  }

  async approve(id: string, approver: string): Promise<Proposal> {
    const who = parseIdentity(approver);
    for (let attempt = 1; ; attempt++) {
      const record = await this.find(id);
      const p = record.proposal;
      if (p.state !== 'open') throw new SlipwayError('NOT_OPEN', `proposal ${p.id} is ${p.state}; only an open proposal can be approved`, 'stalling', { state: p.state });
      if (same(who.name, p.author)) {
        this.record({ action: 'refused', proposal: p.id, environment: p.environment, service: p.service, digest: p.digest, actor: who.name, code: 'SELF_APPROVAL' });
        throw new SlipwayError('SELF_APPROVAL', `${who.name} wrote proposal ${p.id} and cannot approve it; ask someone else`, 'stalling', { author: p.author });
      }
      if (p.approvals.some((a) => same(a, who.name))) return p;
      const head = await this.repo.readCommit(p.headCommit);
      const commit = await this.repo.writeCommit({
        tree: head.tree,
        parents: [p.headCommit],
        message: formatMessage(`Approve ${p.id}`, undefined, [[TRAILER.proposal, p.id], [TRAILER.approvedBy, `${who.name} <${who.email}>`]]),
        author: who,
        committer: who,
        at: this.clock(),
      });
      if (!(await this.repo.compareAndSwap(record.ref, p.headCommit, commit))) {
        if (attempt >= this.maxAttempts) throw this.raced(record.ref);
        continue;
      }
      this.record({ action: 'approved', proposal: p.id, environment: p.environment, service: p.service, digest: p.digest, actor: who.name, commit });
      return (await this.read(record.ref)).proposal;
    }
  }

  async merge(id: string, options: MergeOptions): Promise<MergeResult> {
    const actor = parseIdentity(options.actor);
    for (let attempt = 1; ; attempt++) {
      const record = await this.find(id);
      const p = record.proposal;
      const main = await this.repo.mustResolve(this.main, 'the main branch');
      const now = options.now ?? this.clock();
      const state = await readPromotionState(this.repo, main, p.environment);
      const gateInput = { proposal: p, rollback: record.rollback, state, now, override: options.override };
      let gate = mergeGate(gateInput);
      if (gate.allowed) {
        const verification = await this.verify({ repository: record.repository, digest: p.digest, service: p.service, policy: state.config.spec.trust, publicKeys: state.publicKeys, now });
        gate = mergeGate({ ...gateInput, verification });
      }
      if (!gate.allowed) {
        this.record({ action: 'refused', proposal: p.id, environment: p.environment, service: p.service, digest: p.digest, actor: actor.name, code: gate.reason, reason: gate.message });
        throw new SlipwayError(gate.reason, gate.message, refusalKind(gate.reason), { proposal: p.id, ...gate.data });
      }

      const tree = await this.mergedTree(record, main);
      const trailers: Trailers = [
        [TRAILER.proposal, p.id],
        [TRAILER.environment, p.environment],
        [TRAILER.service, p.service],
        [TRAILER.image, `${record.repository}@${p.digest}`],
        [TRAILER.provenance, trailer(record.trailers, TRAILER.provenance) ?? ''],
        [TRAILER.sourceCommit, trailer(record.trailers, TRAILER.sourceCommit) ?? ''],
        [TRAILER.mergedBy, `${actor.name} <${actor.email}>`],
        ...p.approvals.map((a): [string, string] => [TRAILER.approvedBy, a]),
      ];
      if (record.rollback) trailers.push([TRAILER.rollback, trailer(record.trailers, TRAILER.rollback) ?? 'yes']);
      if (gate.override) trailers.push([TRAILER.freezeOverride, `${gate.override.reason} (window "${gate.override.window.name}")`]);
      const mergeCommit = await this.repo.writeCommit({
        tree,
        parents: [main, p.headCommit],
        message: formatMessage(`Merge ${p.id}: ${p.service} ${p.digest.slice(0, 19)} into ${p.environment}`, undefined, trailers),
        author: actor,
        committer: actor,
        at: now,
      });
      await this.beforeRefUpdate?.(this.main);
      if (!(await this.repo.compareAndSwap(this.main, main, mergeCommit))) {
        if (attempt >= this.maxAttempts) throw this.raced(this.main);
        continue;
      }
      await this.repo.refreshWorktree(this.main, main, mergeCommit);
      const base = { proposal: p.id, environment: p.environment, service: p.service, digest: p.digest, actor: actor.name, commit: mergeCommit };
      if (gate.override) this.record({ ...base, action: 'override', reason: gate.override.reason, window: gate.override.window.name });
      this.record({ ...base, action: 'merged', attempts: attempt });
      return { proposal: { ...p, state: 'merged' }, mergeCommit };
    }
  }

  async status(id: string): Promise<Proposal> {
    return (await this.find(id)).proposal;
  }

  async list(filter: { environment?: string; service?: string; state?: ProposalState } = {}): Promise<Proposal[]> {
    return (await this.records(filter)).map((r) => r.proposal);
  }

  private async records(filter: { environment?: string; service?: string; state?: ProposalState }, scope: { openOnly?: boolean } = {}): Promise<ProposalRecord[]> {
    const refs = [...(await this.repo.listRefs(OPEN_PREFIX)), ...(scope.openOnly ? [] : await this.repo.listRefs(CLOSED_PREFIX))];
    // Branch names carry environment and service, so most refs are skipped without reading a commit.
    const named = (ref: string) => ref.slice(ref.startsWith(OPEN_PREFIX) ? OPEN_PREFIX.length : CLOSED_PREFIX.length);
    const candidates = refs.filter((ref) => {
      const [env, rest] = named(ref).split('/', 2);
      if (filter.environment && env !== filter.environment) return false;
      if (filter.service && !(rest ?? '').startsWith(`${filter.service}-`)) return false;
      return true;
    });
    const out: ProposalRecord[] = [];
    for (const ref of candidates) {
      const record = await this.read(ref).catch(() => undefined);
      if (!record) continue;
      const p = record.proposal;
      if (filter.environment && p.environment !== filter.environment) continue;
      if (filter.service && p.service !== filter.service) continue;
      if (filter.state && p.state !== filter.state) continue;
      out.push(record);
    }
    return out.sort((a, b) => a.proposal.id.localeCompare(b.proposal.id));
  }

  /** The tree of main with the proposal's service file applied; when main changed the same file, the bump is re-applied to main's version. */
  private async mergedTree(record: ProposalRecord, main: string): Promise<string> {
    const p = record.proposal;
    const path = servicePath(p.environment, p.service);
    const [onMain, onProposal] = [await this.repo.blobOid(main, path), await this.repo.blobOid(p.headCommit, path)];
    const mainTree = (await this.repo.readCommit(main)).tree;
    if (onMain === onProposal) return mainTree;
    const base = await this.repo.mergeBase(main, p.headCommit);
    const onBase = base ? await this.repo.blobOid(base, path) : undefined;
    if (onMain === onBase || onMain === undefined) {
      return this.repo.treeWithFile(main, path, (await this.repo.readFile(p.headCommit, path))!);
    }
    const mainText = (await this.repo.readFile(main, path))!;
    const bumped = bumpDigest(mainText, { digest: p.digest, repository: record.repository }, path);
    return bumped.status === 'already-updated' ? mainTree : this.repo.treeWithFile(main, path, bumped.content);
  }

  /**
   * Now, but always after every open proposal for the same file: commit times order proposals (see
   * supersedeOlder), and two made within one second must still read as older and newer.
   */
  private async proposalTime(environment: string, service: string): Promise<Date> {
    let latest = 0;
    for (const r of await this.records({ environment, service, state: 'open' }, { openOnly: true })) {
      latest = Math.max(latest, (await this.repo.readCommit(r.proposalCommit)).committer.timestamp);
    }
    const now = this.clock();
    return Math.floor(now.getTime() / 1000) <= latest ? new Date((latest + 1) * 1000) : now;
  }

  /**
   * Of the open proposals for one environment and service, keep the newest (by proposal commit time, then
   * commit id, so two racing proposers agree on which one that is) and close the rest as superseded by it.
   */
  private async supersedeOlder(environment: string, service: string): Promise<void> {
    const open = await this.records({ environment, service, state: 'open' }, { openOnly: true });
    if (open.length < 2) return;
    const keyed = await Promise.all(open.map(async (r) => ({ r, time: (await this.repo.readCommit(r.proposalCommit)).committer.timestamp })));
    keyed.sort((a, b) => a.time - b.time || a.r.proposalCommit.localeCompare(b.r.proposalCommit));
    const newest = keyed.pop()!.r.proposal;
    for (const { r } of keyed) {
      const older = r.proposal;
      if (await this.close(older, `Superseded by ${newest.id}`, [[TRAILER.supersededBy, newest.id]])) {
        this.record({ action: 'superseded', proposal: older.id, environment, service, digest: older.digest, actor: this.identity.name, reason: `superseded by ${newest.id}` });
      }
    }
  }

  /** Close a proposal with a note: a commit on its branch saying why, kept under refs/slipway/closed/, and the branch removed. */
  private async close(p: Proposal, note: string, trailers: Trailers): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const record = await this.find(p.id);
      if (record.proposal.state !== 'open') return false;
      const head = await this.repo.readCommit(record.proposal.headCommit);
      const closing = await this.repo.writeCommit({
        tree: head.tree,
        parents: [record.proposal.headCommit],
        message: formatMessage(note, undefined, [[TRAILER.proposal, p.id], [TRAILER.closed, note], ...trailers]),
        author: this.identity,
        at: this.clock(),
      });
      const closedRef = `${CLOSED_PREFIX}${p.id}`;
      const previous = await this.repo.resolve(closedRef);
      if (!(await this.repo.compareAndSwap(closedRef, previous, closing))) {
        if (attempt >= this.maxAttempts) throw this.raced(closedRef);
        continue;
      }
      if (await this.repo.compareAndSwap(record.ref, record.proposal.headCommit, undefined)) return true;
      if (attempt >= this.maxAttempts) throw this.raced(record.ref);
    }
  }

  private async find(id: string): Promise<ProposalRecord> {
    const clean = id.replace(/^refs\/heads\//, '').replace(/^slipway\//, '');
    for (const ref of [`${OPEN_PREFIX}${clean}`, `${CLOSED_PREFIX}${clean}`]) {
      if (await this.repo.resolve(ref)) return this.read(ref);
    }
    throw new SlipwayError('PROPOSAL_NOT_FOUND', `no proposal "${id}" (expected <env>/<service>-<short digest>; see slipway proposals)`, 'stalling', { id });
  }

  private async read(ref: string): Promise<ProposalRecord> {
    const head = await this.repo.mustResolve(ref, 'the proposal branch');
    const approvals: string[] = [];
    let closedNote: Trailers | undefined;
    let oid = head;
    for (let depth = 0; depth < 1000; depth++) {
      const commit = await this.repo.readCommit(oid);
      const trailers = parseTrailers(commit.message);
      if (trailer(trailers, TRAILER.image) && trailer(trailers, TRAILER.environment) && trailer(trailers, TRAILER.service)) {
        const image = trailer(trailers, TRAILER.image)!;
        const at = image.lastIndexOf('@');
        const author = commit.author.name;
        const distinct: string[] = [];
        for (const a of approvals.reverse()) {
          const name = parseIdentity(a).name;
          if (!same(name, author) && !distinct.some((d) => same(d, name))) distinct.push(name);
        }
        const id = ref.startsWith(OPEN_PREFIX) ? ref.slice(OPEN_PREFIX.length) : ref.slice(CLOSED_PREFIX.length);
        let state: ProposalState;
        const main = await this.repo.resolve(this.main);
        if (closedNote) state = trailer(closedNote, TRAILER.supersededBy) ? 'superseded' : 'closed';
        else state = main && (await this.repo.contains(main, oid)) ? 'merged' : 'open';
        return {
          proposal: {
            id,
            environment: trailer(trailers, TRAILER.environment)!,
            service: trailer(trailers, TRAILER.service)!,
            digest: image.slice(at + 1),
            state,
            branch: `slipway/${id}`,
            headCommit: head,
            author,
            approvals: distinct,
          },
          ref,
          proposalCommit: oid,
          trailers,
          repository: image.slice(0, at),
          rollback: trailer(trailers, TRAILER.rollback) !== undefined,
        };
      }
      approvals.push(...trailerAll(trailers, TRAILER.approvedBy));
      if (trailer(trailers, TRAILER.closed)) closedNote ??= trailers;
      if (commit.parent.length === 0) break;
      oid = commit.parent[0]!;
    }
    throw new SlipwayError('NOT_A_PROPOSAL', `${ref} has no Slipway proposal commit (no ${TRAILER.image} trailer)`, 'stalling', { ref });
  }

  private raced(ref: string): SlipwayError {
    return new SlipwayError('REF_MOVED', `${ref} kept moving while Slipway tried to update it (${this.maxAttempts} attempts); run the command again`, 'waiting', { ref });
  }

  private record(event: Omit<AuditEvent, 'at' | 'provider'>): void {
    this.audit.append({ at: this.clock().toISOString(), provider: 'local', ...event } as AuditEvent);
  }
}

function same(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

function refusalKind(reason: RefusalReason): 'stalling' | 'waiting' {
  return reason === 'FROZEN' || reason === 'APPROVALS_MISSING' ? 'waiting' : 'stalling';
}
