import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { BLOCK_BYTES, GZIP_LEVEL, buildImage, buildLayer, collectEntries, streamLayer } from '../../../builder/image/index.js';
import { openImageStore, pushImage } from '../../../lib/oci/index.js';
import { classifySegments } from '../../../builder/image/deflate.js';
import { blockWorkers } from '../../../builder/image/workers.js';

const execFileAsync = promisify(execFile);
const epoch = 1_767_225_600;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'slipway-layer-blocks-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Deterministic bytes: a pseudo-random half (incompressible) and a text half. */
function body(i: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  let x = (i + 1) * 2654435761;
  const text = Buffer.from(`export const value${i} = "lorem ipsum dolor sit amet";\n`);
  for (let o = 0; o < size; o++) {
    if (o < size / 2) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      buf[o] = x & 0xff;
    } else buf[o] = text[o % text.length]!;
  }
  return buf;
}

/** About 3.5 MiB over 60 files in 6 directories (several compression blocks), written in `order`. */
async function writeBigContext(dir: string, order: 'forward' | 'backward'): Promise<void> {
  const indexes = Array.from({ length: 60 }, (_, i) => i);
  if (order === 'backward') indexes.reverse();
  for (const i of indexes) {
    const sub = join(dir, `part${i % 6}`);
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `chunk${i}.bin`), body(i, 60_000 + i * 97));
  }
}

describe('a layer larger than one compression block', () => {
  let a: string;
  let b: string;
  beforeAll(async () => {
    a = join(tmp, 'a');
    b = join(tmp, 'b');
    await writeBigContext(a, 'forward');
    await writeBigContext(b, 'backward');
  });

  it('is byte-identical when built from two directories written in a different order', async () => {
    const [la, lb] = await Promise.all([buildLayer(await collectEntries(a, 'app'), epoch), buildLayer(await collectEntries(b, 'app'), epoch)]);
    expect(la.tarSize).toBeGreaterThan(3 * BLOCK_BYTES);
    expect(lb.digest).toBe(la.digest);
    expect(lb.bytes.equals(la.bytes)).toBe(true);
  });

  it('is one ordinary gzip member: gunzip gives the tar its diff_id names, and the gzip and tar tools read it', async () => {
    const layer = await buildLayer(await collectEntries(a, 'app'), epoch);
    expect(layer.digest).toBe(`sha256:${createHash('sha256').update(layer.bytes).digest('hex')}`);
    const tar = gunzipSync(layer.bytes);
    expect(tar.length).toBe(layer.tarSize);
    expect(`sha256:${createHash('sha256').update(tar).digest('hex')}`).toBe(layer.diffId);
    // Fixed header: deflate, no name, mtime 0, XFL of the level, OS Unix.
    expect([...layer.bytes.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, GZIP_LEVEL === 1 ? 4 : 0, 3]);
    const file = join(tmp, 'layer.tar.gz');
    await writeFile(file, layer.bytes);
    await execFileAsync('gzip', ['-t', file]);
    const { stdout } = await execFileAsync('tar', ['-tzf', file], { maxBuffer: 16 * 1024 * 1024 });
    const names = stdout.trim().split('\n');
    expect(names).toHaveLength(1 + 6 + 60);
    expect(names[0]).toBe('app/');
    const out = join(tmp, 'unpacked');
    await mkdir(out);
    await execFileAsync('tar', ['-xzf', file, '-C', out]);
    expect((await readFile(join(out, 'app/part3/chunk57.bin'))).equals(body(57, 60_000 + 57 * 97))).toBe(true);
  });

  it("is decompressed by Go's gzip reader (skopeo --dest-decompress) to the tar its diff_id names, stored blocks and all", async () => {
    const spec = { context: 'dist', workingDir: '/app' };
    const image = await buildImage({ contextDir: a, spec, source: { url: 'https://git.example/big.git', revision: 'd'.repeat(40) }, epoch });
    const layout = join(tmp, 'go-layout');
    await pushImage(openImageStore(`oci:${layout}`), image, 'big');
    const out = join(tmp, 'go-dir');
    await execFileAsync('skopeo', ['copy', '--quiet', '--dest-decompress', `oci:${layout}:big`, `dir:${out}`], { timeout: 60_000 });
    const tar = await readFile(join(out, image.layer.diffId.slice('sha256:'.length)));
    expect(`sha256:${createHash('sha256').update(tar).digest('hex')}`).toBe(image.layer.diffId);
    expect(tar.length).toBe(image.layer.tarSize);
    expect(classifySegments(tar.subarray(0, BLOCK_BYTES)).includes(1)).toBe(true); // the stream does hold stored runs
  });

  it('hands the gzip bytes to a sink in order while it is made', async () => {
    const pieces: Buffer[] = [];
    const layer = await buildLayer(await collectEntries(a, 'app'), epoch, (chunk) => void pieces.push(chunk));
    expect(pieces.length).toBeGreaterThan(3);
    expect(Buffer.concat(pieces).equals(layer.bytes)).toBe(true);
  });

  it('streamed without keeping: the same bytes, and the layer waits for a slow sink (at most 8 chunks unsettled)', async () => {
    const kept = await buildLayer(await collectEntries(a, 'app'), epoch);
    const copies: Buffer[] = [];
    let unsettled = 0;
    let most = 0;
    const layer = await streamLayer(await collectEntries(a, 'app'), epoch, async (chunk) => {
      copies.push(Buffer.from(chunk)); // the chunk's memory is reused after this settles
      most = Math.max(most, ++unsettled);
      await new Promise((r) => setTimeout(r, 5));
      unsettled--;
    });
    expect(layer.digest).toBe(kept.digest);
    expect(layer.size).toBe(kept.bytes.length);
    expect(Buffer.concat(copies).equals(kept.bytes)).toBe(true);
    expect(most).toBeLessThanOrEqual(9);
  });

  it('streamed without keeping: block buffers go round, so layers after the first need no new memory for their blocks', async () => {
    const big = join(tmp, 'round');
    await mkdir(big);
    for (let i = 0; i < 24; i++) await writeFile(join(big, `f${i}.js`), body(i, 1024 * 1024));
    const entries = await collectEntries(big, 'app');
    const kept = await buildLayer(entries, epoch);
    const stream = async () => {
      const copies: Buffer[] = [];
      const before = blockWorkers().freshBuffers;
      const layer = await streamLayer(entries, epoch, async (chunk) => {
        copies.push(Buffer.from(chunk));
        await new Promise((r) => setImmediate(r));
      });
      expect(layer.digest).toBe(kept.digest);
      expect(Buffer.concat(copies).equals(kept.bytes)).toBe(true);
      return blockWorkers().freshBuffers - before;
    };
    // As many spares as can be in use at once (8 blocks ahead, tar and compressed, and 8 unsettled chunks): from
    // then on no block needs new memory, as long as every buffer comes back.
    blockWorkers().prefill(32);
    expect(await stream()).toBe(0);
    expect(await stream()).toBe(0);
  });

  it('refuses an unsafe entry the walk meets after blocks went out, leaving no blob and no partial upload behind', async () => {
    const dir = join(tmp, 'late-unsafe');
    await mkdir(join(dir, 'a'), { recursive: true });
    for (let i = 0; i < 8; i++) await writeFile(join(dir, 'a', `f${i}.bin`), body(i, 1024 * 1024));
    await symlink('../../outside', join(dir, 'zz-escape')); // listed last: after several blocks are laid out
    const layoutDir = join(tmp, 'late-unsafe-layout');
    const layout = openImageStore(`oci:${layoutDir}`);
    const spec = { context: 'dist', workingDir: '/app' };
    await expect(buildImage({ contextDir: dir, spec, source: { url: 'https://git.example/x.git', revision: 'e'.repeat(40) }, epoch, uploadTo: layout })).rejects.toMatchObject({
      code: 'IMAGE_CONTEXT_UNSAFE',
      message: expect.stringContaining('zz-escape'),
    });
    expect(await readdir(join(layoutDir, 'blobs', 'sha256'))).toEqual([]);
  });

  it('stops with the error of a sink that fails', async () => {
    let calls = 0;
    const failing = streamLayer(await collectEntries(a, 'app'), epoch, async () => {
      if (++calls === 3) throw new Error('the upload broke');
    });
    await expect(failing).rejects.toThrow('the upload broke');
  });

  it('gives the same image digest whether or not the layer is streamed to a layout, which then has it', async () => {
    const spec = { context: 'dist', workingDir: '/app' };
    const source = { url: 'https://git.example/big.git', revision: 'c'.repeat(40) };
    const plain = await buildImage({ contextDir: a, spec, source, epoch });
    const layout = openImageStore(`oci:${join(tmp, 'layout')}`);
    const streamed = await buildImage({ contextDir: b, spec, source, epoch, uploadTo: layout });
    expect(streamed.digest).toBe(plain.digest);
    expect(streamed.blobs[1]!.bytes).toBeUndefined(); // written to the layout as it was made, not kept
    expect((await layout.getBlob(streamed.layer.digest)).equals(plain.blobs[1]!.bytes!)).toBe(true);
    await pushImage(layout, streamed, 'streamed');
    // Another store cannot get a layer that was not kept: said, and nothing is pushed there.
    const elsewhere = openImageStore(`oci:${join(tmp, 'elsewhere')}`);
    await expect(pushImage(elsewhere, streamed)).rejects.toMatchObject({ code: 'BLOB_NOT_AVAILABLE' });
    expect(await elsewhere.getManifest(streamed.digest)).toBeUndefined();
  });
});

describe('the order of a layer\'s entries', () => {
  /** Parents first, depth first, each directory's entries by the UTF-8 bytes of their names. */
  const expectedOrder = (paths: string[]) => {
    const children = new Map<string, string[]>();
    for (const p of paths) {
      const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
      children.set(parent, [...(children.get(parent) ?? []), p]);
    }
    const name = (p: string) => Buffer.from(p.slice(p.lastIndexOf('/') + 1));
    const out: string[] = [];
    const visit = (parent: string) => {
      for (const p of (children.get(parent) ?? []).sort((x, y) => Buffer.compare(name(x), name(y)))) {
        out.push(p);
        visit(p);
      }
    };
    visit('');
    return out;
  };

  it.each([
    ['without characters past U+FFFF', ['a/b', 'a-c', 'a.js', 'Z', 'é', '\uE000x', 'ab', 'a b', 'a/b-c/d', 'a/b.d']],
    ['with characters past U+FFFF (UTF-16 order differs there)', ['a/b', 'a-c', '\u{1F600}', '\uE000x', '\uFFFDz', 'é', 'a/\u{1F600}', 'a/\uE000']],
  ])('is parents first, depth first, names by their UTF-8 bytes, %s', async (_, names) => {
    const dir = await mkdtemp(join(tmp, 'order-'));
    for (const name of names) {
      await mkdir(join(dir, name, '..'), { recursive: true });
      await writeFile(join(dir, name), name);
    }
    const paths = (await collectEntries(dir)).map((e) => e.path);
    expect(paths).toEqual(expectedOrder(paths));
    expect(paths).toEqual(expect.arrayContaining(names));
    // A directory comes before what it holds, and what it holds comes before its next sibling ('a/b' before 'a-c').
    expect(paths.indexOf('a/b')).toBeLessThan(paths.indexOf('a-c'));
  });
});
