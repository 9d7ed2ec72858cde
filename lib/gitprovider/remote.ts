/**
 * An environments repository behind an http(s) git remote: any smart-HTTP server (`git http-backend`,
 * Gitea, GitLab, Bitbucket, GitHub over git). The local provider works on a bare mirror of it kept under
 * `$SLIPWAY_HOME/promotion/remotes/<hash>.git`: opening fetches the remote's branches and Slipway's own
 * `refs/slipway/*` into the mirror, and every ref Slipway moves is moved in the mirror and then pushed.
 *
 * A push is a compare-and-swap on the remote: it only goes through when the remote ref is still where
 * Slipway read it (checked on the advertised refs before sending, and again by the server, which refuses
 * an update whose old value is stale). When the remote moved, the mirror is fetched again and the
 * provider's own retry loop rebuilds its commit on the new main. A branch that is not Slipway's own
 * (main, any other branch) is never force-pushed; a proposal branch or a `refs/slipway/` ref that Slipway
 * replaces is replaced only from the exact value it read (a force-with-lease).
 *
 * Credentials: `https://user:token@host/...` in the URL, or `SLIPWAY_GIT_TOKEN` (basic auth with the user
 * `SLIPWAY_GIT_USERNAME`, default `slipway`). They are sent on every request and never appear in a path,
 * a message or the mirror's config.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { SlipwayError } from '../errors.js';
import { slipwayHome } from '../home.js';
import { Repo } from './repo.js';

const ZERO = '0'.repeat(40);
const SLIPWAY_REFS = 'refs/slipway/';

export function isRemoteUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** The URL without user and password, for messages, paths and config. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}

/** `$SLIPWAY_HOME/promotion/remotes/<sha256(url without credentials)[0:16]>.git` */
export function remoteMirrorDir(url: string, env: NodeJS.ProcessEnv = process.env): string {
  const hash = createHash('sha256').update(redactUrl(url)).digest('hex').slice(0, 16);
  return join(slipwayHome(env), 'promotion', 'remotes', `${hash}.git`);
}

export interface RemoteRepoOptions {
  env?: NodeJS.ProcessEnv;
  /** Where the mirror lives (default: remoteMirrorDir(url)). */
  mirror?: string;
  /** Runs before each push with the ref about to be pushed (lets tests move the remote at exactly that moment). */
  beforePush?: (ref: string) => Promise<void> | void;
}

export function authHeaders(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const token = env.SLIPWAY_GIT_TOKEN;
  if (!token) return {};
  const user = env.SLIPWAY_GIT_USERNAME || 'slipway';
  return { Authorization: `Basic ${Buffer.from(`${user}:${token}`).toString('base64')}` };
}

export class RemoteRepo extends Repo {
  /** The remote's URL as given (it may hold credentials: never print it). */
  private readonly url: string;
  /** The URL without credentials. */
  readonly remoteUrl: string;
  private readonly headers: Record<string, string>;
  private readonly tokenGiven: boolean;
  private readonly beforePush?: (ref: string) => Promise<void> | void;

  private constructor(url: string, mirror: string, options: RemoteRepoOptions) {
    super({ gitdir: mirror });
    this.url = url;
    this.remoteUrl = redactUrl(url);
    const env = options.env ?? process.env;
    this.headers = authHeaders(env);
    this.tokenGiven = Boolean(env.SLIPWAY_GIT_TOKEN) || /\/\/[^/@]+@/.test(url);
    this.beforePush = options.beforePush;
  }

  /** Open the mirror of `url` (made on first use) and bring it up to date with the remote. */
  static async connect(url: string, options: RemoteRepoOptions = {}): Promise<RemoteRepo> {
    const mirror = options.mirror ?? remoteMirrorDir(url, options.env);
    const repo = new RemoteRepo(url, mirror, options);
    if (!fs.existsSync(join(mirror, 'HEAD'))) {
      fs.mkdirSync(mirror, { recursive: true });
      await git.init({ fs, gitdir: mirror, bare: true, defaultBranch: 'main' });
      await git.setConfig({ fs, gitdir: mirror, path: 'remote.origin.url', value: repo.remoteUrl });
      await git.setConfig({ fs, gitdir: mirror, path: 'remote.origin.fetch', value: '+refs/heads/*:refs/remotes/origin/*' });
    }
    await repo.sync();
    return repo;
  }

  override describe(): string {
    return this.remoteUrl;
  }

  /**
   * Make the mirror say what the remote says: its branches as the mirror's branches, and Slipway's
   * `refs/slipway/*` (closed proposals), fetching the objects of any it does not have yet.
   */
  async sync(): Promise<void> {
    // A push that was interrupted may have left its temporary shallow mark behind.
    fs.rmSync(join(this.gitdir, 'shallow'), { force: true });
    const base = { fs, http, gitdir: this.gitdir, url: this.url, cache: this.cache, remote: 'origin', tags: false };
    // One listing says where everything is; objects are fetched only when some are missing, so an
    // unchanged remote costs one round trip. A ref moving during the fetch is caught by listing again.
    for (let round = 1; ; round++) {
      const wanted = new Map<string, string>();
      for (const { ref, oid } of await this.serverRefs('refs/')) {
        if (ref.startsWith('refs/heads/') || ref.startsWith(SLIPWAY_REFS)) wanted.set(ref, oid);
      }
      if (![...wanted.keys()].some((ref) => ref.startsWith('refs/heads/'))) {
        throw new SlipwayError('EMPTY_REMOTE', `${this.remoteUrl} has no branches yet; push the environments repository there first (slipway init, then git push)`, 'stalling', {
          repo: this.remoteUrl,
        });
      }
      const missing: string[] = [];
      for (const [ref, oid] of wanted) if (!(await this.has(oid))) missing.push(ref);
      if (missing.length === 0) {
        await this.mirror(wanted);
        return;
      }
      if (round >= 3) throw new SlipwayError('REMOTE_ERROR', `${this.remoteUrl} kept changing while Slipway fetched it; run the command again`, 'waiting', { repo: this.remoteUrl });
      try {
        if (missing.some((ref) => ref.startsWith('refs/heads/'))) await git.fetch({ ...base, headers: { ...this.headers }, singleBranch: false, prune: true });
        for (const ref of missing.filter((r) => r.startsWith(SLIPWAY_REFS))) await git.fetch({ ...base, headers: { ...this.headers }, ref, singleBranch: true });
      } catch (err) {
        throw this.transportError(err, 'fetch');
      }
    }
  }

  /** Set the mirror's branches and `refs/slipway/*` to exactly `wanted`. */
  private async mirror(wanted: Map<string, string>): Promise<void> {
    const present = [...(await this.listRefs('refs/heads/')), ...(await this.listRefs(SLIPWAY_REFS))];
    for (const ref of present) if (!wanted.has(ref)) await git.deleteRef({ fs, gitdir: this.gitdir, ref });
    for (const [ref, oid] of wanted) {
      if ((await this.resolve(ref)) !== oid) await git.writeRef({ fs, gitdir: this.gitdir, ref, value: oid, force: true });
    }
    const main = wanted.has('refs/heads/main') ? 'refs/heads/main' : [...wanted.keys()].find((r) => r.startsWith('refs/heads/'));
    if (main) await git.writeRef({ fs, gitdir: this.gitdir, ref: 'HEAD', value: main, symbolic: true, force: true });
  }

  /**
   * Move `ref` from `expected` to `next` in the mirror and on the remote. False, with the mirror fetched
   * again, when the remote's ref is not at `expected` any more (another writer got there first).
   */
  override async compareAndSwap(ref: string, expected: string | undefined, next: string | undefined): Promise<boolean> {
    if (next === undefined) {
      if ((await this.resolve(ref)) !== expected) return false;
      if (!(await this.push(ref, expected, undefined))) {
        await this.sync();
        return false;
      }
      return super.compareAndSwap(ref, expected, undefined);
    }
    if (!(await super.compareAndSwap(ref, expected, next))) return false;
    let pushed: boolean;
    try {
      pushed = await this.push(ref, expected, next);
    } catch (err) {
      await super.compareAndSwap(ref, next, expected);
      throw err;
    }
    if (!pushed) await this.sync();
    return pushed;
  }

  /**
   * Push what the mirror's `ref` holds now to the remote, provided the remote's `ref` is still at
   * `expected` (for code that moved the mirror's ref itself, e.g. a rollback). False, with the mirror
   * fetched again, when the remote moved: rebuild on the new value and try again.
   */
  async publish(ref: string, expected: string): Promise<boolean> {
    const next = await this.mustResolve(ref, ref);
    if (next === expected) return true;
    if (await this.push(ref, expected, next)) return true;
    await this.sync();
    return false;
  }

  /** Push the mirror's `ref` (at `next`) to the remote, or delete it there; false when the remote's ref was not at `expected`. */
  private async push(ref: string, expected: string | undefined, next: string | undefined): Promise<boolean> {
    await this.beforePush?.(ref);
    const own = ref.startsWith(SLIPWAY_REFS) || ref.startsWith('refs/heads/slipway/');
    let leaseBroken = false;
    // isomorphic-git's push looks for a merge base of the new and the old commit by walking from the old
    // one to the root of history (seconds on a long history). Marking the old commit shallow for the
    // length of the push stops that walk there; the mirror is never shallow otherwise (see sync).
    const shallow = join(this.gitdir, 'shallow');
    if (expected && next) fs.writeFileSync(shallow, `${expected}\n`);
    try {
      await git.push({
        fs,
        http,
        gitdir: this.gitdir,
        url: this.url,
        headers: { ...this.headers },
        cache: this.cache,
        remote: 'origin',
        // The commit itself, not the mirror's ref: another process sharing this mirror may move that ref meanwhile.
        ref: next ?? expected ?? ZERO,
        remoteRef: ref,
        delete: next === undefined,
        // Never for anything but Slipway's own refs, and even there only from the value read (the lease below).
        force: own && next !== undefined,
        onPrePush: ({ remoteRef }) => {
          leaseBroken = remoteRef.oid !== (expected ?? ZERO);
          return !leaseBroken;
        },
      });
      return true;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (leaseBroken || code === 'PushRejectedError') return false;
      if (code === 'GitPushError') {
        // The server refused the update: it moved between our look and our push, or a hook/protection said no.
        const now = (await this.serverRefs(ref)).find((r) => r.ref === ref)?.oid;
        if (now !== expected) return false;
        throw new SlipwayError('PUSH_REJECTED', `${this.remoteUrl} refused the update of ${ref}: ${scrub((err as Error).message)}`, 'stalling', { repo: this.remoteUrl, ref });
      }
      throw this.transportError(err, 'push to');
    } finally {
      fs.rmSync(shallow, { force: true });
    }
  }

  private async serverRefs(prefix: string): Promise<{ ref: string; oid: string }[]> {
    try {
      const refs = await git.listServerRefs({ http, url: this.url, headers: { ...this.headers }, prefix, protocolVersion: 2 });
      return refs.filter((r) => r.ref.startsWith(prefix) && /^[0-9a-f]{40}$/.test(r.oid)).map((r) => ({ ref: r.ref, oid: r.oid }));
    } catch (err) {
      throw this.transportError(err, 'fetch');
    }
  }

  private async has(oid: string): Promise<boolean> {
    try {
      await git.readObject({ fs, gitdir: this.gitdir, oid, format: 'deflated', cache: this.cache });
      return true;
    } catch {
      return false;
    }
  }

  /** What went wrong talking to the remote, in words a person can act on, naming the URL without credentials. */
  private transportError(err: unknown, verb: string): SlipwayError {
    if (err instanceof SlipwayError) return err;
    const e = err as { code?: string; message?: string; data?: { statusCode?: number; statusMessage?: string } };
    const data = { repo: this.remoteUrl };
    const status = e.code === 'HttpError' ? e.data?.statusCode : undefined;
    if (status === 401 || status === 403) {
      const hint = this.tokenGiven ? 'check that the token is valid and may read and push to this repository' : 'set SLIPWAY_GIT_TOKEN (and SLIPWAY_GIT_USERNAME if the server needs one)';
      return new SlipwayError('AUTH_FAILED', `cannot ${verb} ${this.remoteUrl}: the server refused the credentials (HTTP ${status}); ${hint}`, 'stalling', { ...data, status });
    }
    if (status === 404 || e.code === 'SmartHttpError') {
      return new SlipwayError(
        'NOT_A_GIT_REMOTE',
        `cannot ${verb} ${this.remoteUrl}: it is not a git repository served over smart HTTP${status ? ` (HTTP ${status})` : ''}; check the URL (e.g. https://host/owner/envs.git)`,
        'stalling',
        data,
      );
    }
    if (status) return new SlipwayError('REMOTE_ERROR', `cannot ${verb} ${this.remoteUrl}: HTTP ${status} ${e.data?.statusMessage ?? ''}`.trim(), 'waiting', { ...data, status });
    if (e.code && /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE)$/.test(e.code)) {
      return new SlipwayError('REMOTE_UNREACHABLE', `cannot ${verb} ${this.remoteUrl}: ${e.code} (is the server up and the address right?)`, 'waiting', { ...data, cause: e.code });
    }
    return new SlipwayError('REMOTE_ERROR', `cannot ${verb} ${this.remoteUrl}: ${scrub(e.message ?? String(err))}`, 'waiting', data);
  }
}

/** Remove any `user:password@` an underlying message may carry. */
function scrub(text: string): string {
  return text.replace(/(\w+:\/\/)[^/@\s]*@/g, '$1');
}

/** Open the environments repository at a path on disk or behind an http(s) URL (fetched into the mirror). */
export async function openRepository(source: string, options: RemoteRepoOptions = {}): Promise<Repo> {
  return isRemoteUrl(source) ? RemoteRepo.connect(source, options) : Repo.open(source);
}
