/**
 * An in-process stand-in for the GitHub REST API (and the one GraphQL mutation Slipway uses), answering
 * with the response shapes of the public API documentation (docs.github.com/rest: git data, contents,
 * pulls, reviews, issues labels/comments, commit statuses, check runs). The git data lives in a real bare repository
 * on disk, so tests can read what the provider wrote with the `git` CLI. Tokens map to users; a user
 * cannot approve their own pull request, as on GitHub.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as fs from 'node:fs';
import git from 'isomorphic-git';

export interface RecordedRequest {
  method: string;
  path: string;
  body: unknown;
  user?: string;
}

interface Pull {
  id: number;
  number: number;
  node_id: string;
  title: string;
  body: string | null;
  state: 'open' | 'closed';
  headRef: string;
  /** Frozen once the pull request is merged or closed. */
  headSha?: string;
  base: string;
  user: string;
  labels: string[];
  requested_reviewers: string[];
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  merged_at: string | null;
  merge_commit_sha: string | null;
  merged_by: string | null;
  auto_merge: null | { enabled_by: ReturnType<typeof userJson>; merge_method: string; commit_title: string | null; commit_message: string | null };
}

interface Review {
  id: number;
  node_id: string;
  user: string;
  body: string;
  state: 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED';
  commit_id: string;
  submitted_at: string;
}

interface Status {
  id: number;
  sha: string;
  state: string;
  context: string;
  description: string | null;
  target_url: string | null;
  created_at: string;
}

interface CheckRun {
  id: number;
  name: string;
  head_sha: string;
  status: string;
  conclusion: string | null;
  output: { title: string | null; summary: string | null };
  completed_at: string | null;
}

export interface FakeGitHubOptions {
  owner: string;
  repo: string;
  /** The bare repository that holds the git data. */
  gitdir: string;
  /** token → login */
  tokens: Record<string, string>;
  allowAutoMerge?: boolean;
  clock?: () => Date;
  /** Tokens that are GitHub App installation tokens: only these may create check runs (others get GitHub's 403). */
  appTokens?: string[];
  /** Branch protection "require branches to be up to date before merging" on the base branch. */
  requireUpToDate?: boolean;
}

function userJson(login: string) {
  return {
    login,
    id: [...login].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 1_000_000, 7),
    node_id: `U_${Buffer.from(login).toString('base64url')}`,
    avatar_url: `https://avatars.githubusercontent.com/${login}`,
    url: `https://api.github.com/users/${login}`,
    html_url: `https://github.com/${login}`,
    type: 'User',
    site_admin: false,
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: unknown[],
  ) {
    super(message);
  }
}

export class FakeGitHub {
  readonly requests: RecordedRequest[] = [];
  readonly pulls: Pull[] = [];
  readonly reviews = new Map<number, Review[]>();
  readonly comments = new Map<number, { id: number; body: string; user: string; created_at: string }[]>();
  readonly statuses: Status[] = [];
  readonly checkRuns: CheckRun[] = [];
  allowAutoMerge: boolean;
  /** When set, merging answers 405 with this message (a branch rule, required check or review blocks it). */
  mergeBlockedBy?: string;
  /** Runs before a request is answered (lets a test move a branch at exactly that moment). */
  beforeRequest?: (method: string, path: string) => Promise<void> | void;
  private server?: Server;
  private nextId = 1000;
  private readonly clock: () => Date;
  private readonly cache = {};

  constructor(readonly options: FakeGitHubOptions) {
    this.allowAutoMerge = options.allowAutoMerge ?? true;
    this.clock = options.clock ?? (() => new Date());
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | undefined;
    if (!address) throw new Error('the fake GitHub is not started');
    return `http://127.0.0.1:${address.port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private get g() {
    return { fs, gitdir: this.options.gitdir, cache: this.cache };
  }

  private now(): string {
    return this.clock().toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  private api(path: string): string {
    return `https://api.github.com/repos/${this.options.owner}/${this.options.repo}${path}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      return this.send(res, 400, { message: 'Problems parsing JSON', documentation_url: 'https://docs.github.com/rest' });
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const auth = /^(?:token|bearer)\s+(.+)$/i.exec(req.headers.authorization ?? '');
    const user = auth ? this.options.tokens[auth[1]!] : undefined;
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname + url.search, body, user });
    if (!user) return this.send(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest', status: '401' });
    try {
      await this.beforeRequest?.(req.method ?? 'GET', url.pathname);
      if (req.method === 'POST' && url.pathname.endsWith('/check-runs') && !(this.options.appTokens ?? []).includes(auth![1]!)) {
        throw new HttpError(403, 'Resource not accessible by personal access token');
      }
      const [status, json] = await this.route(req.method ?? 'GET', url, body as Record<string, unknown> | undefined, user);
      this.send(res, status, json);
    } catch (err) {
      if (err instanceof HttpError) {
        this.send(res, err.status, { message: err.message, ...(err.errors ? { errors: err.errors } : {}), documentation_url: 'https://docs.github.com/rest', status: String(err.status) });
      } else {
        this.send(res, 500, { message: (err as Error).message });
      }
    }
  }

  private send(res: ServerResponse, status: number, json: unknown): void {
    if (status === 204) {
      res.writeHead(204).end();
      return;
    }
    const text = JSON.stringify(json);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-github-api-version-selected': '2022-11-28' }).end(text);
  }

  private async route(method: string, url: URL, body: Record<string, unknown> | undefined, user: string): Promise<[number, unknown]> {
    if (method === 'POST' && url.pathname === '/graphql') return [200, this.graphql(body ?? {}, user)];
    const prefix = `/repos/${this.options.owner}/${this.options.repo}`;
    if (!url.pathname.startsWith(prefix)) throw new HttpError(404, 'Not Found');
    const path = decodeURIComponent(url.pathname.slice(prefix.length)) || '/';
    const q = url.searchParams;
    let m: RegExpExecArray | null;
    const need = (field: string) => {
      if (body?.[field] === undefined) throw new HttpError(422, `Invalid request.\n\n"${field}" wasn't supplied.`, [{ resource: 'Request', field, code: 'missing_field' }]);
      return body[field];
    };

    if (method === 'GET' && path === '/') return [200, this.repoJson()];
    if (method === 'GET' && (m = /^\/git\/ref\/(.+)$/.exec(path))) return [200, await this.refJson(`refs/${m[1]}`)];
    if (method === 'POST' && path === '/git/refs') {
      const ref = String(need('ref'));
      if (!/^refs\/heads\//.test(ref)) throw new HttpError(422, 'Reference name must start with refs/heads/');
      if (await this.resolve(ref)) throw new HttpError(422, 'Reference already exists');
      await this.readCommitOr422(String(need('sha')));
      await git.writeRef({ fs, gitdir: this.options.gitdir, ref, value: String(body!.sha) });
      return [201, await this.refJson(ref)];
    }
    if (method === 'PATCH' && (m = /^\/git\/refs\/(.+)$/.exec(path))) {
      const ref = `refs/${m[1]}`;
      const current = await this.resolve(ref);
      if (!current) throw new HttpError(422, 'Reference does not exist');
      const next = String(need('sha'));
      if (!body!.force && !(await git.isDescendent({ ...this.g, oid: next, ancestor: current, depth: -1 }))) throw new HttpError(422, 'Update is not a fast forward');
      await git.writeRef({ fs, gitdir: this.options.gitdir, ref, value: next, force: true });
      return [200, await this.refJson(ref)];
    }
    if (method === 'DELETE' && (m = /^\/git\/refs\/(.+)$/.exec(path))) {
      const ref = `refs/${m[1]}`;
      if (!(await this.resolve(ref))) throw new HttpError(422, 'Reference does not exist');
      await git.deleteRef({ fs, gitdir: this.options.gitdir, ref });
      return [204, undefined];
    }
    if (method === 'GET' && (m = /^\/git\/commits\/([0-9a-f]{40})$/.exec(path))) return [200, await this.commitJson(m[1]!)];
    if (method === 'POST' && path === '/git/trees') return [201, await this.createTree(body ?? {})];
    if (method === 'POST' && path === '/git/commits') return [201, await this.createCommit(body ?? {}, user)];
    if (method === 'GET' && (m = /^\/contents\/(.+)$/.exec(path))) return [200, await this.contents(m[1]!, q.get('ref') ?? 'refs/heads/main')];

    if (method === 'POST' && path === '/pulls') return [201, await this.createPull(body ?? {}, user)];
    if (method === 'GET' && path === '/pulls') return [200, await this.listPulls(q)];
    if ((m = /^\/pulls\/(\d+)$/.exec(path))) {
      const pr = this.pull(Number(m[1]));
      if (method === 'GET') return [200, await this.pullJson(pr)];
      if (method === 'PATCH') {
        if (body?.state === 'closed' && pr.state === 'open') {
          pr.headSha = await this.headSha(pr);
          pr.state = 'closed';
          pr.closed_at = this.now();
        }
        if (typeof body?.body === 'string') pr.body = body.body;
        if (typeof body?.title === 'string') pr.title = body.title;
        pr.updated_at = this.now();
        return [200, await this.pullJson(pr)];
      }
    }
    if (method === 'PUT' && (m = /^\/pulls\/(\d+)\/merge$/.exec(path))) return [200, await this.mergePull(this.pull(Number(m[1])), body ?? {}, user)];
    if ((m = /^\/pulls\/(\d+)\/requested_reviewers$/.exec(path)) && method === 'POST') {
      const pr = this.pull(Number(m[1]));
      const reviewers = (body?.reviewers as string[] | undefined) ?? [];
      if (reviewers.some((r) => r.toLowerCase() === pr.user.toLowerCase())) throw new HttpError(422, 'Review cannot be requested from pull request author.');
      pr.requested_reviewers.push(...reviewers.filter((r) => !pr.requested_reviewers.includes(r)));
      return [201, await this.pullJson(pr)];
    }
    if ((m = /^\/pulls\/(\d+)\/reviews$/.exec(path))) {
      const pr = this.pull(Number(m[1]));
      const list = this.reviews.get(pr.number) ?? [];
      if (method === 'GET') return [200, list.map((r) => this.reviewJson(pr, r))];
      if (method === 'POST') {
        const event = String(body?.event ?? 'COMMENT');
        if (pr.state !== 'open') throw new HttpError(422, 'Unprocessable Entity', ['Pull request is closed']);
        if (event === 'APPROVE' && user.toLowerCase() === pr.user.toLowerCase()) {
          throw new HttpError(422, 'Unprocessable Entity', ['Can not approve your own pull request']);
        }
        const state = event === 'APPROVE' ? 'APPROVED' : event === 'REQUEST_CHANGES' ? 'CHANGES_REQUESTED' : 'COMMENTED';
        const review: Review = { id: this.nextId++, node_id: `PRR_${this.nextId}`, user, body: String(body?.body ?? ''), state, commit_id: await this.headSha(pr), submitted_at: this.now() };
        list.push(review);
        this.reviews.set(pr.number, list);
        pr.requested_reviewers = pr.requested_reviewers.filter((r) => r !== user);
        return [200, this.reviewJson(pr, review)];
      }
    }
    if ((m = /^\/issues\/(\d+)\/labels$/.exec(path)) && method === 'POST') {
      const pr = this.pull(Number(m[1]));
      for (const l of (body?.labels as string[] | undefined) ?? []) if (!pr.labels.includes(l)) pr.labels.push(l);
      return [200, pr.labels.map((l) => this.labelJson(l))];
    }
    if ((m = /^\/issues\/(\d+)\/comments$/.exec(path))) {
      const pr = this.pull(Number(m[1]));
      const list = this.comments.get(pr.number) ?? [];
      if (method === 'GET') return [200, list.map((c) => ({ id: c.id, body: c.body, user: userJson(c.user), created_at: c.created_at, updated_at: c.created_at, html_url: `https://github.com/${this.options.owner}/${this.options.repo}/pull/${pr.number}#issuecomment-${c.id}` }))];
      if (method === 'POST') {
        const c = { id: this.nextId++, body: String(need('body')), user, created_at: this.now() };
        list.push(c);
        this.comments.set(pr.number, list);
        return [201, { id: c.id, node_id: `IC_${c.id}`, body: c.body, user: userJson(user), created_at: c.created_at, updated_at: c.created_at, issue_url: this.api(`/issues/${pr.number}`), html_url: `https://github.com/${this.options.owner}/${this.options.repo}/pull/${pr.number}#issuecomment-${c.id}`, author_association: 'MEMBER' }];
      }
    }
    if (method === 'POST' && (m = /^\/statuses\/([0-9a-f]{40})$/.exec(path))) {
      const state = String(need('state'));
      if (!['error', 'failure', 'pending', 'success'].includes(state)) throw new HttpError(422, 'Validation Failed', [{ resource: 'Status', field: 'state', code: 'custom' }]);
      await this.readCommitOr422(m[1]!);
      const s: Status = { id: this.nextId++, sha: m[1]!, state, context: String(body?.context ?? 'default'), description: (body?.description as string) ?? null, target_url: (body?.target_url as string) ?? null, created_at: this.now() };
      this.statuses.push(s);
      return [201, { ...s, url: this.api(`/statuses/${s.sha}`), node_id: `SC_${s.id}`, avatar_url: null, updated_at: s.created_at, creator: userJson(user) }];
    }
    if (method === 'POST' && path === '/check-runs') {
      const name = String(need('name'));
      const sha = String(need('head_sha'));
      await this.readCommitOr422(sha);
      const status = String(body?.status ?? 'queued');
      const conclusion = (body?.conclusion as string | undefined) ?? null;
      if (status === 'completed' && !conclusion) throw new HttpError(422, 'Invalid request.\n\nNo subschema in "anyOf" matched.\n"conclusion" wasn\'t supplied.');
      const output = (body?.output ?? {}) as { title?: string; summary?: string };
      if (body?.output && (!output.title || !output.summary)) throw new HttpError(422, 'Invalid request.\n\n"title", "summary" are required keys in output.');
      const run: CheckRun = { id: this.nextId++, name, head_sha: sha, status, conclusion, output: { title: output.title ?? null, summary: output.summary ?? null }, completed_at: (body?.completed_at as string) ?? null };
      this.checkRuns.push(run);
      return [
        201,
        {
          id: run.id,
          head_sha: sha,
          node_id: `CR_${run.id}`,
          external_id: '',
          url: this.api(`/check-runs/${run.id}`),
          html_url: `https://github.com/${this.options.owner}/${this.options.repo}/runs/${run.id}`,
          details_url: null,
          status,
          conclusion,
          started_at: this.now(),
          completed_at: run.completed_at,
          output: { ...run.output, text: null, annotations_count: 0, annotations_url: this.api(`/check-runs/${run.id}/annotations`) },
          name,
          check_suite: { id: this.nextId++ },
          app: { id: 4242, slug: 'slipway', node_id: 'A_slipway', name: 'Slipway', owner: userJson(this.options.owner) },
          pull_requests: [],
        },
      ];
    }
    if (method === 'GET' && (m = /^\/commits\/([^/]+)\/statuses$/.exec(path))) {
      const sha = (await this.resolve(m[1]!)) ?? m[1]!;
      return [200, this.statuses.filter((s) => s.sha === sha).reverse()];
    }
    throw new HttpError(404, 'Not Found');
  }

  private repoJson() {
    const { owner, repo } = this.options;
    return {
      id: 1296269,
      node_id: 'R_kgDOfake',
      name: repo,
      full_name: `${owner}/${repo}`,
      private: true,
      owner: userJson(owner),
      html_url: `https://github.com/${owner}/${repo}`,
      url: this.api(''),
      default_branch: 'main',
      allow_merge_commit: true,
      allow_squash_merge: true,
      allow_rebase_merge: true,
      allow_auto_merge: this.allowAutoMerge,
      delete_branch_on_merge: false,
      permissions: { admin: false, maintain: false, push: true, triage: true, pull: true },
    };
  }

  private async resolve(ref: string): Promise<string | undefined> {
    try {
      return await git.resolveRef({ fs, gitdir: this.options.gitdir, ref });
    } catch {
      return undefined;
    }
  }

  private async readCommitOr422(sha: string) {
    try {
      return await git.readCommit({ ...this.g, oid: sha });
    } catch {
      throw new HttpError(422, 'Object does not exist');
    }
  }

  private async refJson(ref: string) {
    const sha = await this.resolve(ref);
    if (!sha) throw new HttpError(404, 'Not Found');
    return { ref, node_id: `REF_${Buffer.from(ref).toString('base64url')}`, url: this.api(`/git/${ref}`), object: { type: 'commit', sha, url: this.api(`/git/commits/${sha}`) } };
  }

  private async commitJson(sha: string) {
    const { commit } = await this.readCommitOr422(sha).catch(() => {
      throw new HttpError(404, 'Not Found');
    });
    const who = (p: { name: string; email: string; timestamp: number }) => ({ name: p.name, email: p.email, date: new Date(p.timestamp * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') });
    return {
      sha,
      node_id: `C_${sha}`,
      url: this.api(`/git/commits/${sha}`),
      html_url: `https://github.com/${this.options.owner}/${this.options.repo}/commit/${sha}`,
      author: who(commit.author),
      committer: who(commit.committer),
      message: commit.message.replace(/\n$/, ''),
      tree: { sha: commit.tree, url: this.api(`/git/trees/${commit.tree}`) },
      parents: commit.parent.map((p) => ({ sha: p, url: this.api(`/git/commits/${p}`), html_url: `https://github.com/${this.options.owner}/${this.options.repo}/commit/${p}` })),
      verification: { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null },
    };
  }

  private async contents(path: string, ref: string) {
    const commit = (await this.resolve(ref)) ?? (/^[0-9a-f]{40}$/.test(ref) ? ref : undefined);
    if (!commit) throw new HttpError(404, `No commit found for the ref ${ref}`);
    try {
      const { blob, oid } = await git.readBlob({ ...this.g, oid: commit, filepath: path });
      const name = path.split('/').pop()!;
      const content = Buffer.from(blob).toString('base64').replace(/(.{60})/g, '$1\n');
      return {
        type: 'file',
        encoding: 'base64',
        size: blob.length,
        name,
        path,
        content,
        sha: oid,
        url: this.api(`/contents/${path}?ref=${ref}`),
        git_url: this.api(`/git/blobs/${oid}`),
        html_url: `https://github.com/${this.options.owner}/${this.options.repo}/blob/${ref}/${path}`,
        download_url: `https://raw.githubusercontent.com/${this.options.owner}/${this.options.repo}/${ref}/${path}`,
        _links: { self: this.api(`/contents/${path}?ref=${ref}`), git: this.api(`/git/blobs/${oid}`), html: `https://github.com/${this.options.owner}/${this.options.repo}/blob/${ref}/${path}` },
      };
    } catch {
      throw new HttpError(404, 'Not Found');
    }
  }

  private async createTree(body: Record<string, unknown>) {
    const items = (body.tree as { path: string; mode: string; type: string; content?: string; sha?: string | null }[] | undefined) ?? [];
    let root = body.base_tree ? String(body.base_tree) : undefined;
    for (const item of items) {
      if (item.type !== 'blob' || !['100644', '100755'].includes(item.mode)) throw new HttpError(422, 'Only blob entries are supported by this server', [{ resource: 'Tree', field: 'tree', code: 'invalid' }]);
      const blob = item.content !== undefined ? await git.writeBlob({ fs, gitdir: this.options.gitdir, blob: Buffer.from(item.content, 'utf8') }) : item.sha;
      if (!blob) throw new HttpError(422, 'tree.sha or tree.content is required');
      root = await this.replaceInTree(root, item.path.split('/'), blob, item.mode);
    }
    if (!root) throw new HttpError(422, 'Invalid tree info');
    const { tree } = await git.readTree({ ...this.g, oid: root });
    return {
      sha: root,
      url: this.api(`/git/trees/${root}`),
      tree: tree.map((e) => ({ path: e.path, mode: e.mode, type: e.type, sha: e.oid, url: this.api(`/git/${e.type}s/${e.oid}`) })),
      truncated: false,
    };
  }

  private async replaceInTree(treeOid: string | undefined, segments: string[], blob: string, mode: string): Promise<string> {
    const entries = treeOid ? (await git.readTree({ ...this.g, oid: treeOid })).tree : [];
    const [head, ...rest] = segments as [string, ...string[]];
    const i = entries.findIndex((e) => e.path === head);
    const sub = i >= 0 && entries[i]!.type === 'tree' ? entries[i]!.oid : undefined;
    const entry = rest.length === 0
      ? { mode, path: head, oid: blob, type: 'blob' as const }
      : { mode: '040000', path: head, oid: await this.replaceInTree(sub, rest, blob, mode), type: 'tree' as const };
    if (i >= 0) entries[i] = entry;
    else entries.push(entry);
    return git.writeTree({ fs, gitdir: this.options.gitdir, tree: entries });
  }

  private async createCommit(body: Record<string, unknown>, user: string) {
    const message = body.message;
    const tree = body.tree;
    if (typeof message !== 'string' || typeof tree !== 'string') throw new HttpError(422, 'Invalid request.\n\n"message", "tree" are required.');
    const parents = (body.parents as string[] | undefined) ?? [];
    for (const p of parents) await this.readCommitOr422(p);
    const sig = (s: unknown) => {
      const o = (s ?? {}) as { name?: string; email?: string; date?: string };
      const date = o.date ? new Date(o.date) : this.clock();
      return { name: o.name ?? user, email: o.email ?? `${user}@users.noreply.github.com`, timestamp: Math.floor(date.getTime() / 1000), timezoneOffset: 0 };
    };
    const sha = await git.writeCommit({ fs, gitdir: this.options.gitdir, commit: { message: message.endsWith('\n') ? message : `${message}\n`, tree, parent: parents, author: sig(body.author), committer: sig(body.committer ?? body.author) } });
    return this.commitJson(sha);
  }

  private pull(number: number): Pull {
    const pr = this.pulls.find((p) => p.number === number);
    if (!pr) throw new HttpError(404, 'Not Found');
    return pr;
  }

  private async headSha(pr: Pull): Promise<string> {
    if (pr.headSha) return pr.headSha;
    const sha = await this.resolve(`refs/heads/${pr.headRef}`);
    if (!sha) throw new HttpError(422, `head branch ${pr.headRef} is gone`);
    return sha;
  }

  private async createPull(body: Record<string, unknown>, user: string) {
    const head = String(body.head ?? '').replace(new RegExp(`^${this.options.owner}:`), '');
    const base = String(body.base ?? '');
    if (!head || !base || !body.title) throw new HttpError(422, 'Validation Failed', [{ resource: 'PullRequest', field: !head ? 'head' : !base ? 'base' : 'title', code: 'missing_field' }]);
    if (!(await this.resolve(`refs/heads/${head}`))) throw new HttpError(422, 'Validation Failed', [{ resource: 'PullRequest', field: 'head', code: 'invalid' }]);
    if (this.pulls.some((p) => p.state === 'open' && p.headRef === head && p.base === base)) {
      throw new HttpError(422, 'Validation Failed', [{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${this.options.owner}:${head}.` }]);
    }
    const number = this.pulls.length + 1;
    const pr: Pull = {
      id: this.nextId++,
      number,
      node_id: `PR_kwDOfake${number}`,
      title: String(body.title),
      body: (body.body as string) ?? null,
      state: 'open',
      headRef: head,
      base,
      user,
      labels: [],
      requested_reviewers: [],
      created_at: this.now(),
      updated_at: this.now(),
      closed_at: null,
      merged_at: null,
      merge_commit_sha: null,
      merged_by: null,
      auto_merge: null,
    };
    this.pulls.push(pr);
    return this.pullJson(pr);
  }

  private async listPulls(q: URLSearchParams) {
    const state = q.get('state') ?? 'open';
    const head = q.get('head')?.replace(new RegExp(`^${this.options.owner}:`), '');
    const base = q.get('base');
    const perPage = Number(q.get('per_page') ?? 30);
    const page = Number(q.get('page') ?? 1);
    const matching = this.pulls
      .filter((p) => state === 'all' || p.state === state)
      .filter((p) => !head || p.headRef === head)
      .filter((p) => !base || p.base === base)
      .sort((a, b) => b.number - a.number);
    return Promise.all(matching.slice((page - 1) * perPage, page * perPage).map((p) => this.pullJson(p)));
  }

  private labelJson(name: string) {
    return { id: [...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 1_000_000, 3), node_id: `LA_${name}`, url: this.api(`/labels/${encodeURIComponent(name)}`), name, color: 'ededed', default: false, description: null };
  }

  private reviewJson(pr: Pull, r: Review) {
    return {
      id: r.id,
      node_id: r.node_id,
      user: userJson(r.user),
      body: r.body,
      state: r.state,
      html_url: `https://github.com/${this.options.owner}/${this.options.repo}/pull/${pr.number}#pullrequestreview-${r.id}`,
      pull_request_url: this.api(`/pulls/${pr.number}`),
      commit_id: r.commit_id,
      submitted_at: r.submitted_at,
      author_association: 'MEMBER',
    };
  }

  async pullJson(pr: Pull) {
    const { owner, repo } = this.options;
    const headSha = await this.headSha(pr).catch(() => pr.headSha ?? '0'.repeat(40));
    const baseSha = (await this.resolve(`refs/heads/${pr.base}`)) ?? '0'.repeat(40);
    const branch = (ref: string, sha: string) => ({ label: `${owner}:${ref}`, ref, sha, user: userJson(owner), repo: this.repoJson() });
    return {
      url: this.api(`/pulls/${pr.number}`),
      id: pr.id,
      node_id: pr.node_id,
      html_url: `https://github.com/${owner}/${repo}/pull/${pr.number}`,
      number: pr.number,
      state: pr.state,
      locked: false,
      title: pr.title,
      user: userJson(pr.user),
      body: pr.body,
      labels: pr.labels.map((l) => this.labelJson(l)),
      created_at: pr.created_at,
      updated_at: pr.updated_at,
      closed_at: pr.closed_at,
      merged_at: pr.merged_at,
      merge_commit_sha: pr.merge_commit_sha,
      requested_reviewers: pr.requested_reviewers.map(userJson),
      requested_teams: [],
      head: branch(pr.headRef, headSha),
      base: branch(pr.base, baseSha),
      draft: false,
      merged: pr.merged_at !== null,
      mergeable: pr.state === 'open' ? true : null,
      mergeable_state: pr.state === 'open' ? 'clean' : 'unknown',
      merged_by: pr.merged_by ? userJson(pr.merged_by) : null,
      auto_merge: pr.auto_merge,
      author_association: 'MEMBER',
    };
  }

  private async mergePull(pr: Pull, body: Record<string, unknown>, user: string) {
    if (pr.state !== 'open') throw new HttpError(405, 'Pull Request is not mergeable');
    const head = await this.headSha(pr);
    if (body.sha && body.sha !== head) throw new HttpError(409, 'Head branch was modified. Review and try the merge again.');
    if (this.mergeBlockedBy) throw new HttpError(405, this.mergeBlockedBy);
    const baseSha = await this.resolve(`refs/heads/${pr.base}`);
    if (this.options.requireUpToDate && baseSha && !(await git.isDescendent({ ...this.g, oid: head, ancestor: baseSha, depth: -1 }))) {
      throw new HttpError(405, 'Base branch was modified. Review and try the merge again.');
    }
    const title = String(body.commit_title ?? `Merge pull request #${pr.number} from ${this.options.owner}/${pr.headRef}`);
    const message = body.commit_message ? `${title}\n\n${String(body.commit_message)}` : `${title}\n\n${pr.title}`;
    let sha: string;
    try {
      const result = await git.merge({
        fs,
        gitdir: this.options.gitdir,
        ours: pr.base,
        theirs: pr.headRef,
        fastForward: false,
        message: message.endsWith('\n') ? message : `${message}\n`,
        author: { name: user, email: `${user}@users.noreply.github.com`, timestamp: Math.floor(this.clock().getTime() / 1000), timezoneOffset: 0 },
        committer: { name: 'GitHub', email: 'noreply@github.com', timestamp: Math.floor(this.clock().getTime() / 1000), timezoneOffset: 0 },
      });
      if (!result.oid) throw new Error('nothing merged');
      sha = result.oid;
    } catch {
      throw new HttpError(405, 'Pull Request is not mergeable');
    }
    pr.headSha = head;
    pr.state = 'closed';
    pr.merged_at = this.now();
    pr.closed_at = pr.merged_at;
    pr.merge_commit_sha = sha;
    pr.merged_by = user;
    return { sha, merged: true, message: 'Pull Request successfully merged' };
  }

  private graphql(body: Record<string, unknown>, user: string) {
    const query = String(body.query ?? '');
    const vars = (body.variables ?? {}) as Record<string, unknown>;
    if (/enablePullRequestAutoMerge/.test(query)) {
      const pr = this.pulls.find((p) => p.node_id === vars.id);
      if (!pr) return { data: { enablePullRequestAutoMerge: null }, errors: [{ type: 'NOT_FOUND', path: ['enablePullRequestAutoMerge'], message: `Could not resolve to a node with the global id of '${String(vars.id)}'` }] };
      if (!this.allowAutoMerge) return { data: { enablePullRequestAutoMerge: null }, errors: [{ type: 'UNPROCESSABLE', path: ['enablePullRequestAutoMerge'], message: 'Pull request Auto merge is not allowed for this repository' }] };
      pr.auto_merge = { enabled_by: userJson(user), merge_method: 'merge', commit_title: null, commit_message: null };
      return { data: { enablePullRequestAutoMerge: { pullRequest: { number: pr.number, autoMergeRequest: { enabledAt: this.now() } } } } };
    }
    return { errors: [{ message: 'This server only answers enablePullRequestAutoMerge' }] };
  }
}
