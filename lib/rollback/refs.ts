/**
 * Moving a branch only if it still points where we started, with git's own lock-file protocol
 * (`<ref>.lock` created exclusively, then renamed over the ref), so the git CLI and we never interleave.
 * Never a force: a moved branch is reported and the caller rebuilds its commit on the new tip.
 */
import { dirname, join } from 'node:path';
import type * as NodeFs from 'node:fs';
import git from 'isomorphic-git';
import { SlipwayError } from '../errors.js';

export type SwapResult = { ok: true } | { ok: false; actual: string | undefined; reason: 'moved' | 'locked' };

export async function compareAndSwapRef(args: { fs: typeof NodeFs; gitdir: string; ref: string; expected: string; value: string }): Promise<SwapResult> {
  const { fs, gitdir, ref, expected, value } = args;
  if (!ref.startsWith('refs/')) throw new SlipwayError('BAD_REF', `refusing to move ${ref}: only full refs (refs/heads/...) are moved`, 'stalling');
  const file = join(gitdir, ref);
  const lock = `${file}.lock`;
  await fs.promises.mkdir(dirname(file), { recursive: true });
  let handle: NodeFs.promises.FileHandle;
  try {
    handle = await fs.promises.open(lock, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { ok: false, actual: undefined, reason: 'locked' };
    throw err;
  }
  let renamed = false;
  try {
    const actual = await resolve(fs, gitdir, ref);
    if (actual !== expected) return { ok: false, actual, reason: 'moved' };
    await handle.writeFile(`${value}\n`);
    await handle.sync();
    await handle.close();
    await fs.promises.rename(lock, file);
    renamed = true;
    return { ok: true };
  } finally {
    if (!renamed) {
      await handle.close().catch(() => undefined);
      await fs.promises.unlink(lock).catch(() => undefined);
    }
  }
}

async function resolve(fs: typeof NodeFs, gitdir: string, ref: string): Promise<string | undefined> {
  try {
    return await git.resolveRef({ fs, gitdir, ref });
  } catch {
    return undefined;
  }
}
