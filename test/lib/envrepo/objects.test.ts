/**
 * The native-zlib object reader (lib/envrepo/objects.ts) against what git itself says every object is:
 * loose objects, packs with offset deltas, packs with ref deltas, an index with 64-bit offsets, and
 * damaged packs and loose objects.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectStore, applyDelta } from '../../../lib/envrepo/objects.js';
import { loadDesiredState, openRepo, resolveRef } from '../../../lib/envrepo/index.js';
import { SlipwayError } from '../../../lib/errors.js';
import { exampleRepo, git } from './gitrepo.js';

/** `type size sha256(content)`: compared as strings, since deep-comparing megabytes of Buffers byte by byte is slow in jest. */
type Expected = string;
const describeObject = (type: string, content: Buffer): Expected => `${type} ${content.length} ${createHash('sha256').update(content).digest('hex')}`;

/** Every object reachable in the repository, as `git cat-file --batch` prints it. */
function objectsByGit(dir: string): Map<string, Expected> {
  const ids = git(dir, 'rev-list', '--objects', '--all')
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter(Boolean);
  const out = execFileSync('git', ['cat-file', '--batch'], { cwd: dir, input: `${ids.join('\n')}\n`, maxBuffer: 1 << 28 });
  const objects = new Map<string, Expected>();
  for (let pos = 0; pos < out.length; ) {
    const nl = out.indexOf(10, pos);
    const [id, type, size] = out.toString('latin1', pos, nl).split(' ');
    const content = out.subarray(nl + 1, nl + 1 + Number(size));
    objects.set(id!, describeObject(type!, content));
    pos = nl + 1 + Number(size) + 1;
  }
  return objects;
}

async function readAll(gitdir: string, ids: Iterable<string>): Promise<Map<string, Expected>> {
  const store = new ObjectStore(gitdir, {});
  const out = new Map<string, Expected>();
  for (const id of ids) {
    const object = await store.read(id);
    if (!object) throw new Error(`the reader did not find ${id}`);
    out.set(id, describeObject(object.type, object.content));
  }
  return out;
}

function packFiles(dir: string): string[] {
  const packDir = join(dir, '.git', 'objects', 'pack');
  return readdirSync(packDir).map((name) => join(packDir, name));
}

/** A repository whose files change a little in every commit, so git stores most versions as deltas. */
function historyRepo(commits = 30): string {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-objects-'));
  git(dir, 'init', '-q', '-b', 'main');
  // Lines long enough that a delta copies with 3-byte offsets and 64 KiB copies (git's size-0 case).
  const big = Array.from({ length: 3000 }, (_, i) => `line ${i} ${'x'.repeat(40)}`);
  for (let c = 0; c < commits; c++) {
    mkdirSync(join(dir, 'services'), { recursive: true });
    for (let s = 0; s < 8; s++) writeFileSync(join(dir, 'services', `svc-${s}.yaml`), `name: svc-${s}\nversion: ${c}\nreplicas: ${(c * s) % 5}\n`);
    big[(c * 97) % big.length] = `changed in ${c}`;
    writeFileSync(join(dir, 'big.txt'), `${big.join('\n')}\n`);
    writeFileSync(join(dir, 'empty.txt'), '');
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '-m', `commit ${c}`);
  }
  git(dir, 'tag', '-a', 'v1', '-m', 'annotated');
  return dir;
}

describe('reading git objects with native zlib', () => {
  let dir: string;
  let expected: Map<string, Expected>;
  beforeAll(() => {
    dir = historyRepo();
    expected = objectsByGit(dir);
    expected.set(git(dir, 'rev-parse', 'v1'), describeObject('tag', execFileSync('git', ['cat-file', 'tag', 'v1'], { cwd: dir })));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads every loose object exactly as git does', async () => {
    expect(packFiles(dir)).toEqual([]);
    expect(await readAll(join(dir, '.git'), expected.keys())).toEqual(expected);
  });

  it('reads every object of a pack with deep offset-delta chains exactly as git does', async () => {
    git(dir, 'gc', '-q', '--aggressive', '--prune=now');
    expect(packFiles(dir).some((f) => f.endsWith('.pack'))).toBe(true);
    const verify = git(dir, 'verify-pack', '-v', packFiles(dir).find((f) => f.endsWith('.idx'))!);
    expect(verify).toMatch(/chain length = [2-9]/); // deltas on deltas, not only whole objects
    expect(await readAll(join(dir, '.git'), expected.keys())).toEqual(expected);
  });

  it('reads a pack whose deltas name their base by id (REF_DELTA) exactly as git does', async () => {
    git(dir, '-c', 'repack.useDeltaBaseOffset=false', 'repack', '-q', '-a', '-d', '-f');
    expect(await readAll(join(dir, '.git'), expected.keys())).toEqual(expected);
  });

  it('reads a pack index that stores offsets in its 64-bit table', async () => {
    const copy = mkdtempSync(join(tmpdir(), 'slipway-objects-64-'));
    try {
      const packDir = join(copy, 'objects', 'pack');
      mkdirSync(packDir, { recursive: true });
      const pack = packFiles(dir).find((f) => f.endsWith('.pack'))!;
      const target = join(packDir, 'pack-64.pack');
      writeFileSync(target, readFileSync(pack));
      // Threshold 0: every offset goes to the 64-bit table.
      execFileSync('git', ['index-pack', '--index-version=2,0', '-o', join(packDir, 'pack-64.idx'), target], { stdio: 'ignore' });
      const idx = readFileSync(join(packDir, 'pack-64.idx'));
      const count = idx.readUInt32BE(8 + 255 * 4);
      expect(idx.length).toBe(8 + 256 * 4 + count * (20 + 4 + 4 + 8) + 40);
      expect(await readAll(copy, expected.keys())).toEqual(expected);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('answers undefined for an object it does not hold, so callers fall back to isomorphic-git', async () => {
    const store = new ObjectStore(join(dir, '.git'), {});
    expect(await store.read('0123456789012345678901234567890123456789')).toBeUndefined();
    expect(await store.read('not an id')).toBeUndefined();
  });

  it('sees a pack written after an earlier operation listed the packs', async () => {
    const cache = {};
    const before = new ObjectStore(join(dir, '.git'), cache);
    const head = git(dir, 'rev-parse', 'HEAD');
    expect(await before.read(head)).toBeDefined();
    writeFileSync(join(dir, 'late.txt'), 'late\n');
    git(dir, 'add', 'late.txt');
    git(dir, 'commit', '-q', '-m', 'late');
    git(dir, 'repack', '-q', '-a', '-d');
    const late = git(dir, 'rev-parse', 'HEAD:late.txt');
    const after = new ObjectStore(join(dir, '.git'), cache);
    expect((await after.read(late))?.content.toString()).toBe('late\n');
  });
});

describe('reading a damaged repository', () => {
  let dir: string;
  beforeEach(() => {
    dir = historyRepo(3);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a pack whose bytes do not match its checksum, naming the pack and what to do', async () => {
    git(dir, 'gc', '-q', '--prune=now');
    const pack = packFiles(dir).find((f) => f.endsWith('.pack'))!;
    const bytes = readFileSync(pack);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    chmodSync(pack, 0o644);
    writeFileSync(pack, bytes);
    const store = new ObjectStore(join(dir, '.git'), {});
    const error = await store.read(git(dir, 'rev-parse', 'HEAD')).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(SlipwayError);
    expect(error).toMatchObject({ code: 'CORRUPT_OBJECT' });
    expect((error as Error).message).toContain(pack);
    expect((error as Error).message).toContain('git fsck');
  });

  it('refuses a loose object whose content does not hash to its id', async () => {
    const blob = git(dir, 'rev-parse', 'HEAD:services/svc-1.yaml');
    const other = git(dir, 'rev-parse', 'HEAD:services/svc-2.yaml');
    const path = (id: string) => join(dir, '.git', 'objects', id.slice(0, 2), id.slice(2));
    chmodSync(path(blob), 0o644);
    writeFileSync(path(blob), readFileSync(path(other)));
    const error = await new ObjectStore(join(dir, '.git'), {}).read(blob).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'CORRUPT_OBJECT' });
    expect((error as Error).message).toContain(`does not hash to ${blob}`);
  });

  it('turns a damaged object into an error of the load, not a stack trace', async () => {
    const repo = exampleRepo();
    try {
      const env = await openRepo({ repo: repo.dir });
      const commit = await resolveRef({ repo: env, ref: 'HEAD' });
      const blob = git(repo.dir, 'rev-parse', 'HEAD:staging/services/hello.yaml');
      const path = join(repo.dir, '.git', 'objects', blob.slice(0, 2), blob.slice(2));
      chmodSync(path, 0o644);
      writeFileSync(path, Buffer.from('not zlib at all'));
      await expect(loadDesiredState({ repo: env, commit })).rejects.toMatchObject({ code: 'CORRUPT_OBJECT', kind: 'stalling' });
    } finally {
      repo.cleanup();
    }
  });
});

describe('applying a git delta', () => {
  const base = Buffer.from('0123456789abcdef');
  const varint = (n: number) => {
    const out: number[] = [];
    do {
      let byte = n & 0x7f;
      n >>>= 7;
      if (n) byte |= 0x80;
      out.push(byte);
    } while (n);
    return out;
  };

  it('copies ranges of the base and inserts literal bytes', () => {
    // copy 4 bytes from offset 10, insert "XY", copy 2 bytes from offset 0
    const delta = Buffer.from([...varint(16), ...varint(8), 0x80 | 0x01 | 0x10, 10, 4, 2, 0x58, 0x59, 0x80 | 0x10, 2]);
    expect(applyDelta(delta, base, 'test').toString()).toBe('abcdXY01');
  });

  it('refuses a delta made for another base', () => {
    const delta = Buffer.from([...varint(99), ...varint(1), 1, 0x41]);
    expect(() => applyDelta(delta, base, 'test.pack')).toThrow(/expects a base of 99 bytes, the base has 16/);
  });

  it('refuses a delta that copies past the end of its base', () => {
    const delta = Buffer.from([...varint(16), ...varint(4), 0x80 | 0x01 | 0x10, 14, 4]);
    expect(() => applyDelta(delta, base, 'test.pack')).toThrow(/copies past the end/);
  });

  it('refuses a delta that produces fewer bytes than it announced', () => {
    const delta = Buffer.from([...varint(16), ...varint(5), 0x80 | 0x10, 2]);
    expect(() => applyDelta(delta, base, 'test.pack')).toThrow(/produced 2 bytes, it announced 5/);
  });
});
