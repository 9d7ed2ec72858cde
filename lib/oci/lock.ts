/**
 * An exclusive lock file (O_EXCL) holding the owner's pid. A lock whose process is gone is stale and
 * taken over; waiting polls with a short backoff until `timeoutMs`.
 */
import { open, readFile, unlink, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { SlipwayError } from '../errors.js';

export interface LockOptions {
  timeoutMs?: number;
  pollMs?: number;
  /** Called once when the lock is held by someone else and we start waiting. */
  onWait?: (holder: { pid: number; host: string }) => void;
}

export interface FileLock {
  release(): Promise<void>;
}

export async function acquireFileLock(path: string, opts: LockOptions = {}): Promise<FileLock> {
  const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
  const deadline = Date.now() + timeoutMs;
  let poll = opts.pollMs ?? 25;
  let waited = false;
  const me = `${process.pid} ${hostname()}\n`;
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(me);
      await fh.close();
      return {
        release: async () => {
          try {
            if ((await readFile(path, 'utf8')) === me) await unlink(path);
          } catch {
            /* already gone */
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readHolder(path);
    if (holder && isStale(holder)) {
      // Remove only if it is still the same stale file (another waiter may have replaced it).
      const again = await readHolder(path);
      if (again && again.raw === holder.raw) await unlink(path).catch(() => undefined);
      continue;
    }
    if (!holder) {
      // Being written right now, or empty because its writer died between open and write.
      const age = await stat(path).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > 5_000) await unlink(path).catch(() => undefined);
    }
    if (!waited && holder) {
      waited = true;
      opts.onWait?.({ pid: holder.pid, host: holder.host });
    }
    if (Date.now() > deadline) {
      throw new SlipwayError('LOCK_TIMEOUT', `timed out after ${timeoutMs} ms waiting for lock ${path}${holder ? ` held by pid ${holder.pid}` : ''}`, 'waiting', { path });
    }
    await new Promise((r) => setTimeout(r, poll));
    poll = Math.min(poll * 2, 250);
  }
}

export async function withFileLock<T>(path: string, fn: () => Promise<T>, opts?: LockOptions): Promise<T> {
  const lock = await acquireFileLock(path, opts);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

interface Holder {
  pid: number;
  host: string;
  raw: string;
}

async function readHolder(path: string): Promise<Holder | undefined> {
  const raw = await readFile(path, 'utf8').catch(() => '');
  const m = /^(\d+) (\S+)\n$/.exec(raw);
  if (!m) return undefined;
  return { pid: Number(m[1]), host: m[2]!, raw };
}

function isStale(holder: Holder): boolean {
  if (holder.host !== hostname()) return false;
  if (holder.pid === process.pid) return false;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
