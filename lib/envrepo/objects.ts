/**
 * Reading git objects (loose and packed) with Node's native zlib.
 *
 * Why this exists next to isomorphic-git: isomorphic-git inflates every object with pako, a zlib
 * written in JavaScript, and looks each object up through its fs layer (a failed open of the loose
 * path, a listing of `objects/pack/`, ...). Loading one commit of an environments repository reads
 * thousands of small blobs, and those two costs were about half of a full load (2.8 s of CPU for the
 * 3,000 blobs of the 1,000-service benchmark repository). This reader does only the part that has to
 * be fast — find an object in a pack index or the loose store, inflate it with `zlib.inflateSync`,
 * apply its delta chain — and everything else stays with isomorphic-git: refs, commit parsing for
 * ref resolution, fetch and clone, and any object this reader does not find (the callers in repo.ts
 * fall back to isomorphic-git, so a layout this reader does not know yields isomorphic-git's answer).
 *
 * Integrity is checked as isomorphic-git checks it: a loose object's SHA-1 is compared with its id on
 * every read, and a pack is checked once (its trailer against its index, then the SHA-1 of its bytes).
 *
 * Parsed pack indexes and pack bytes are shared by every operation on one repository (keyed by the
 * repository's cache object): pack files are immutable under their name (the name is their checksum).
 * Which packs exist is listed once per `ObjectStore`, i.e. once per operation (see `snapshot`).
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { SlipwayError } from '../errors.js';

export type ObjectType = 'commit' | 'tree' | 'blob' | 'tag';

export interface GitObject {
  type: ObjectType;
  content: Buffer;
}

const PACK_TYPES: Record<number, ObjectType> = { 1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag' };
const OFS_DELTA = 6;
const REF_DELTA = 7;
const IDX_V2_MAGIC = 0xff744f63;

/**
 * Resolved objects kept per pack, bounded by bytes, least recently stored out first. Every resolved
 * object is kept, not only the ones met as a base: packers chain deltas along the order objects are
 * written (git fast-import: each blob against the one before it), so the object read next is often a
 * delta of the one just read, and without this each object would be inflated twice.
 */
const MAX_RESOLVED_CACHE_BYTES = 32 * 1024 * 1024;

function corrupt(what: string, detail: string): SlipwayError {
  return new SlipwayError('CORRUPT_OBJECT', `${what}: ${detail}; the repository is damaged, run \`git fsck\` on it (or delete the cached clone under $SLIPWAY_HOME/repos to fetch it again)`, 'stalling', { what });
}

/** One pack: its index (v2) and its bytes, with the objects found in it located by binary search. */
class Pack {
  private readonly count: number;
  private readonly namesAt: number;
  private readonly offsetsAt: number;
  private readonly largeOffsetsAt: number;
  /** Object start offsets in pack order, to know where each object's compressed bytes end. */
  private sortedOffsets?: Float64Array;
  private readonly resolved = new Map<number, GitObject>();
  private resolvedBytes = 0;

  constructor(
    readonly path: string,
    private readonly idx: Buffer,
    private readonly data: Buffer,
  ) {
    this.count = idx.readUInt32BE(8 + 255 * 4);
    this.namesAt = 8 + 256 * 4;
    this.offsetsAt = this.namesAt + this.count * 20 + this.count * 4;
    this.largeOffsetsAt = this.offsetsAt + this.count * 4;
  }

  /** Position of `oid` (20 bytes) in the index, or -1. */
  private find(oid: Buffer): number {
    const first = oid[0]!;
    let lo = first === 0 ? 0 : this.idx.readUInt32BE(8 + (first - 1) * 4);
    let hi = this.idx.readUInt32BE(8 + first * 4);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const at = this.namesAt + mid * 20;
      const c = this.idx.compare(oid, 0, 20, at, at + 20);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }

  private offsetOf(index: number): number {
    const small = this.idx.readUInt32BE(this.offsetsAt + index * 4);
    if ((small & 0x80000000) === 0) return small;
    const at = this.largeOffsetsAt + (small & 0x7fffffff) * 8;
    return this.idx.readUInt32BE(at) * 2 ** 32 + this.idx.readUInt32BE(at + 4);
  }

  /** Where the object starting at `offset` ends: the next object's start, or the pack's trailer. */
  private endOf(offset: number): number {
    if (!this.sortedOffsets) {
      const offsets = new Float64Array(this.count);
      for (let i = 0; i < this.count; i++) offsets[i] = this.offsetOf(i);
      this.sortedOffsets = offsets.sort();
    }
    const offsets = this.sortedOffsets;
    let lo = 0;
    let hi = offsets.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (offsets[mid]! <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo < offsets.length ? offsets[lo]! : this.data.length - 20;
  }

  has(oid: Buffer): boolean {
    return this.find(oid) >= 0;
  }

  /** The object, or undefined when this pack does not hold it. `external` reads a REF_DELTA base from elsewhere. */
  async read(oid: Buffer, external: (oid: string) => Promise<GitObject | undefined>): Promise<GitObject | undefined> {
    const index = this.find(oid);
    if (index < 0) return undefined;
    return this.readAt(this.offsetOf(index), external, 0);
  }

  private async readAt(offset: number, external: (oid: string) => Promise<GitObject | undefined>, depth: number): Promise<GitObject> {
    const cached = this.resolved.get(offset);
    if (cached) return cached;
    if (depth > 10_000) throw corrupt(this.path, `delta chain at offset ${offset} does not end`);
    const data = this.data;
    let pos = offset;
    let byte = data[pos++]!;
    const typeCode = (byte >> 4) & 7;
    let size = byte & 15;
    for (let shift = 4; byte & 0x80; shift += 7) {
      byte = data[pos++]!;
      size += (byte & 0x7f) * 2 ** shift;
    }
    let base: GitObject | undefined;
    if (typeCode === OFS_DELTA) {
      byte = data[pos++]!;
      let back = byte & 0x7f;
      while (byte & 0x80) {
        byte = data[pos++]!;
        back = (back + 1) * 128 + (byte & 0x7f);
      }
      base = await this.readAt(offset - back, external, depth + 1);
    } else if (typeCode === REF_DELTA) {
      const baseId = data.toString('hex', pos, pos + 20);
      pos += 20;
      const baseIndex = this.find(data.subarray(pos - 20, pos));
      if (baseIndex >= 0) {
        base = await this.readAt(this.offsetOf(baseIndex), external, depth + 1);
      } else {
        base = await external(baseId);
        if (!base) throw corrupt(this.path, `delta base ${baseId} of the object at offset ${offset} is missing`);
      }
    } else if (!PACK_TYPES[typeCode]) {
      throw corrupt(this.path, `unknown object type ${typeCode} at offset ${offset}`);
    }
    let inflated: Buffer;
    try {
      inflated = inflateSync(data.subarray(pos, this.endOf(offset)));
    } catch (err) {
      throw corrupt(this.path, `object at offset ${offset} does not inflate (${(err as Error).message})`);
    }
    if (inflated.length !== size) throw corrupt(this.path, `object at offset ${offset} inflates to ${inflated.length} bytes, its header says ${size}`);
    const object = base ? { type: base.type, content: applyDelta(inflated, base.content, this.path) } : { type: PACK_TYPES[typeCode]!, content: inflated };
    this.remember(offset, object);
    return object;
  }

  private remember(offset: number, object: GitObject): void {
    if (this.resolved.has(offset) || object.content.length > MAX_RESOLVED_CACHE_BYTES / 8) return;
    this.resolved.set(offset, object);
    this.resolvedBytes += object.content.length;
    while (this.resolvedBytes > MAX_RESOLVED_CACHE_BYTES) {
      const [oldest, entry] = this.resolved.entries().next().value as [number, GitObject];
      this.resolved.delete(oldest);
      this.resolvedBytes -= entry.content.length;
    }
  }
}

/** A git delta: base size, result size, then copy-from-base and insert-literal instructions. */
export function applyDelta(delta: Buffer, base: Buffer, where: string): Buffer {
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    let byte: number;
    let shift = 0;
    do {
      byte = delta[pos++]!;
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80 && pos < delta.length);
    return value;
  };
  const baseSize = varint();
  if (baseSize !== base.length) throw corrupt(where, `delta expects a base of ${baseSize} bytes, the base has ${base.length}`);
  const resultSize = varint();
  const out = Buffer.allocUnsafe(resultSize);
  let written = 0;
  while (pos < delta.length) {
    const op = delta[pos++]!;
    if (op & 0x80) {
      let copyOffset = 0;
      let copySize = 0;
      if (op & 0x01) copyOffset |= delta[pos++]!;
      if (op & 0x02) copyOffset |= delta[pos++]! << 8;
      if (op & 0x04) copyOffset |= delta[pos++]! << 16;
      if (op & 0x08) copyOffset += delta[pos++]! * 2 ** 24;
      if (op & 0x10) copySize |= delta[pos++]!;
      if (op & 0x20) copySize |= delta[pos++]! << 8;
      if (op & 0x40) copySize |= delta[pos++]! << 16;
      if (copySize === 0) copySize = 0x10000;
      if (copyOffset + copySize > base.length || written + copySize > resultSize) throw corrupt(where, 'delta copies past the end of its base or result');
      written += base.copy(out, written, copyOffset, copyOffset + copySize);
    } else if (op > 0) {
      if (pos + op > delta.length || written + op > resultSize) throw corrupt(where, 'delta inserts past the end of its result');
      written += delta.copy(out, written, pos, pos + op);
      pos += op;
    } else {
      throw corrupt(where, 'delta holds the reserved instruction 0');
    }
  }
  if (written !== resultSize) throw corrupt(where, `delta produced ${written} bytes, it announced ${resultSize}`);
  return out;
}

/** Packs of one repository by file name, shared by every operation that uses the same cache object. */
const packsByCache = new WeakMap<object, Map<string, Promise<Pack | undefined>>>();

async function loadPack(idxPath: string): Promise<Pack | undefined> {
  const packPath = idxPath.replace(/\.idx$/, '.pack');
  let idx: Buffer;
  let data: Buffer;
  try {
    [idx, data] = await Promise.all([fsp.readFile(idxPath), fsp.readFile(packPath)]);
  } catch {
    return undefined; // removed by a concurrent gc, or half-written by a fetch: leave it to isomorphic-git
  }
  // Only index v2 (what git writes since 2007); anything else is left to isomorphic-git.
  if (idx.length < 8 + 256 * 4 + 40 || idx.readUInt32BE(0) !== IDX_V2_MAGIC || idx.readUInt32BE(4) !== 2) return undefined;
  const count = idx.readUInt32BE(8 + 255 * 4);
  const trailerAt = idx.length - 40;
  if (trailerAt < 8 + 256 * 4 + count * 28) throw corrupt(idxPath, 'pack index is shorter than its object count says');
  const packSum = idx.subarray(trailerAt, trailerAt + 20);
  if (data.length < 32 || data.toString('latin1', 0, 4) !== 'PACK' || !data.subarray(data.length - 20).equals(packSum)) {
    throw corrupt(packPath, 'pack does not match its index (trailer checksum differs)');
  }
  if (!createHash('sha1').update(data.subarray(0, data.length - 20)).digest().equals(packSum)) {
    throw corrupt(packPath, 'pack bytes do not match their checksum');
  }
  return new Pack(packPath, idx, data);
}

/**
 * The objects of one repository as one operation sees them: the packs listed when the store was made
 * (plus every loose object, read on demand). Make one per operation so new packs are seen.
 */
export class ObjectStore {
  private packList?: Promise<Pack[]>;
  private readonly packs: Map<string, Promise<Pack | undefined>>;

  constructor(
    private readonly gitdir: string,
    sharedCache: object,
  ) {
    let packs = packsByCache.get(sharedCache);
    if (!packs) {
      packs = new Map();
      packsByCache.set(sharedCache, packs);
    }
    this.packs = packs;
  }

  private listPacks(): Promise<Pack[]> {
    this.packList ??= (async () => {
      const dir = join(this.gitdir, 'objects', 'pack');
      const names = await fsp.readdir(dir).catch(() => [] as string[]);
      const loaded = await Promise.all(
        names
          .filter((n) => n.endsWith('.idx'))
          .sort()
          .map((n) => {
            const path = join(dir, n);
            let pack = this.packs.get(path);
            if (!pack) {
              pack = loadPack(path);
              this.packs.set(path, pack);
              // A failed load is not remembered: the next operation tries again.
              pack.then(
                (p) => p === undefined && this.packs.delete(path),
                () => this.packs.delete(path),
              );
            }
            return pack;
          }),
      );
      return loaded.filter((p): p is Pack => p !== undefined);
    })();
    return this.packList;
  }

  /** The object with this id, or undefined when neither a pack nor the loose store holds it. */
  async read(oid: string): Promise<GitObject | undefined> {
    if (!/^[0-9a-f]{40}$/.test(oid)) return undefined;
    const id = Buffer.from(oid, 'hex');
    for (const pack of await this.listPacks()) {
      if (pack.has(id)) return pack.read(id, (base) => this.read(base));
    }
    return this.readLoose(oid);
  }

  private async readLoose(oid: string): Promise<GitObject | undefined> {
    const path = join(this.gitdir, 'objects', oid.slice(0, 2), oid.slice(2));
    let deflated: Buffer;
    try {
      deflated = await fsp.readFile(path);
    } catch {
      return undefined;
    }
    let wrapped: Buffer;
    try {
      wrapped = inflateSync(deflated);
    } catch (err) {
      throw corrupt(path, `loose object does not inflate (${(err as Error).message})`);
    }
    if (!createHash('sha1').update(wrapped).digest().equals(Buffer.from(oid, 'hex'))) throw corrupt(path, `loose object's content does not hash to ${oid}`);
    const space = wrapped.indexOf(0x20);
    const nul = wrapped.indexOf(0, space + 1);
    const type = wrapped.toString('latin1', 0, space) as ObjectType;
    if (space < 0 || nul < 0 || !['commit', 'tree', 'blob', 'tag'].includes(type)) throw corrupt(path, 'loose object has no valid header');
    const content = wrapped.subarray(nul + 1);
    if (Number(wrapped.toString('latin1', space + 1, nul)) !== content.length) throw corrupt(path, 'loose object is shorter or longer than its header says');
    return { type, content };
  }
}
