/**
 * A read-mostly view of the file system for isomorphic-git, valid for one operation (one load, one diff).
 *
 * isomorphic-git looks every object up the same way: try the loose file `objects/ab/cdef…` (a failed
 * open), list `objects/pack/`, `stat` the git dir, and probe the fs API with a failing `readFile()`.
 * For a load of thousands of service files those syscalls and the errors they throw cost more than
 * inflating and parsing the objects. Within one operation the answers cannot change in a way that
 * matters (objects are immutable; a pack appearing mid-load only adds objects), so this view lists
 * each directory once and answers "no such loose object" from that listing. Writes go straight
 * through. A new view per operation sees new commits, fetches and repacks.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';

type PromiseFs = typeof fs.promises;

/** One shared error: throwing it costs no stack capture. isomorphic-git only looks at `code`. */
const ENOENT: NodeJS.ErrnoException = Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT' });

export interface ObjectFs {
  promises: PromiseFs;
}

export function objectStoreView(gitdir: string): ObjectFs {
  const real = fs.promises;
  const objectsDir = join(gitdir, 'objects');
  const looseObject = new RegExp(`^${escapeRegExp(objectsDir)}/([0-9a-f]{2})/([0-9a-f]{38})$`);
  const listings = new Map<string, Promise<Set<string> | undefined>>();
  const stats = new Map<string, Promise<fs.Stats>>();

  const listing = (dir: string): Promise<Set<string> | undefined> => {
    let hit = listings.get(dir);
    if (!hit) {
      hit = real.readdir(dir).then(
        (names) => new Set(names),
        () => undefined,
      );
      listings.set(dir, hit);
    }
    return hit;
  };

  const memoStat = (path: string, fn: (p: string) => Promise<fs.Stats>): Promise<fs.Stats> => {
    let hit = stats.get(path);
    if (!hit) {
      hit = fn(path);
      stats.set(path, hit);
    }
    return hit;
  };

  const view = {
    ...real,
    readFile: (async (path: unknown, options?: unknown) => {
      if (typeof path !== 'string') throw ENOENT; // isomorphic-git's "is this a promise fs?" probe
      const m = looseObject.exec(path);
      if (m) {
        const fanout = await listing(join(objectsDir, m[1]!));
        if (!fanout?.has(m[2]!)) throw ENOENT;
      }
      return real.readFile(path, options as Parameters<PromiseFs['readFile']>[1]);
    }) as PromiseFs['readFile'],
    readdir: (async (path: unknown, options?: unknown) => {
      if (typeof path === 'string' && options === undefined) {
        const names = await listing(path);
        if (!names) throw ENOENT;
        return [...names];
      }
      return real.readdir(path as string, options as undefined);
    }) as PromiseFs['readdir'],
    stat: ((path: string) => memoStat(`stat:${path}`, () => real.stat(path))) as PromiseFs['stat'],
    lstat: ((path: string) => memoStat(`lstat:${path}`, () => real.lstat(path))) as PromiseFs['lstat'],
  } as PromiseFs;
  return { promises: view };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
