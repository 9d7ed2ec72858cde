/** Per-segment compression of layer blocks: stored where compressing does not pay, zlib elsewhere, same bytes everywhere. */
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants as zlibConstants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { processBlock } from '../../../builder/image/block.js';
import { BLOCK_BYTES, classifySegments, COMPRESSED_BYTES_MAX, compressBlock, SEGMENT_BYTES } from '../../../builder/image/deflate.js';
import { buildLayer, collectEntries } from '../../../builder/image/layer.js';
import { blockJob, planTar } from '../../../builder/image/plan.js';

/** xorshift bytes: deterministic, incompressible. */
function noise(length: number, seed: number): Buffer {
  const buf = Buffer.alloc(length);
  let x = seed * 2654435761 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

function text(length: number, seed: number): Buffer {
  const line = Buffer.from(`export const value${seed} = ${JSON.stringify('lorem ipsum dolor sit amet '.repeat(3))};\n`);
  const buf = Buffer.alloc(length);
  for (let i = 0; i < length; i++) buf[i] = line[i % line.length]!;
  return buf;
}

/** The deflate stream a block ends when it is the last one, inflated. */
function inflateLast(compressed: Buffer): Buffer {
  return inflateRawSync(compressed);
}

describe('deciding per tar block whether to compress', () => {
  it('stores pseudo-random bytes and compresses text, code headers and zeros', () => {
    const block = Buffer.concat([noise(4 * SEGMENT_BYTES, 1), text(4 * SEGMENT_BYTES, 2), Buffer.alloc(2 * SEGMENT_BYTES), noise(SEGMENT_BYTES, 3)]);
    expect([...classifySegments(block)]).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1]);
  });

  it('compresses a base64 segment (64 symbols: Huffman alone saves a quarter)', () => {
    const base64 = Buffer.from(noise(3 * SEGMENT_BYTES, 4).toString('base64')).subarray(0, 2 * SEGMENT_BYTES);
    expect([...classifySegments(base64)]).toEqual([0, 0]);
  });

  it('leaves a partial last segment to zlib', () => {
    expect([...classifySegments(noise(SEGMENT_BYTES + 100, 5))]).toEqual([1, 0]);
  });

  it('decides the same for a block at any alignment (word reads and byte reads agree)', () => {
    const data = Buffer.concat([noise(64 * SEGMENT_BYTES, 6), text(32 * SEGMENT_BYTES, 7), noise(32 * SEGMENT_BYTES, 8)]);
    const aligned = Buffer.alloc(data.length + 8);
    data.copy(aligned, 4);
    const unaligned = Buffer.alloc(data.length + 8);
    data.copy(unaligned, 3);
    expect(classifySegments(unaligned.subarray(3, 3 + data.length))).toEqual(classifySegments(aligned.subarray(4, 4 + data.length)));
  });
});

describe('a compressed block', () => {
  const mixed = Buffer.concat(Array.from({ length: 96 }, (_, i) => Buffer.concat([noise(5 * 1024, i + 1), text(5 * 1024 + 512, i)])));

  it('inflates back to its bytes, with incompressible runs costing 5 bytes per 64 KiB', () => {
    const out = compressBlock(mixed, true);
    expect(inflateLast(out).equals(mixed)).toBe(true);
    const random = noise(BLOCK_BYTES, 9);
    const stored = compressBlock(random, true);
    expect(inflateLast(stored).equals(random)).toBe(true);
    expect(stored.length).toBeLessThanOrEqual(random.length + 5 * Math.ceil(random.length / 65_535) + 16);
  });

  it('is about as small as zlib level 1 over the whole block', () => {
    const ours = compressBlock(mixed, true).length;
    const zlib = deflateRawSync(mixed, { level: 1 }).length;
    expect(ours).toBeLessThan(zlib * 1.03);
  });

  it('continues a stream: non-final blocks end byte aligned, and the next block follows directly', () => {
    const first = mixed.subarray(0, 600_000);
    const second = Buffer.concat([text(40_000, 99), mixed.subarray(600_000)]);
    const a = compressBlock(first, false);
    const b = compressBlock(second, true);
    expect(inflateRawSync(Buffer.concat([a, b])).equals(Buffer.concat([first, second]))).toBe(true);
    // A non-final block alone is a valid stream prefix: it ends with the sync-flush marker or a whole stored block.
    expect(inflateRawSync(a, { finishFlush: zlibConstants.Z_SYNC_FLUSH }).equals(first)).toBe(true);
  });

  it('is the same bytes every time, whatever was compressed before and into whatever buffer', () => {
    const once = Buffer.from(compressBlock(mixed, false));
    const reused = new ArrayBuffer(COMPRESSED_BYTES_MAX);
    compressBlock(noise(300_000, 10), true, reused);
    const again = compressBlock(mixed, false, reused);
    expect(again.buffer).toBe(reused);
    expect(again.equals(once)).toBe(true);
  });

  it('writes into a new buffer when the one offered is too small', () => {
    const small = new ArrayBuffer(1024);
    const out = compressBlock(mixed, true, small);
    expect(out.buffer).not.toBe(small);
    expect(inflateLast(out).equals(mixed)).toBe(true);
  });
});

describe('a layer compressed on worker threads', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'slipway-deflate-'));
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  async function context(name: string): Promise<string> {
    const dir = join(tmp, name);
    for (let i = 0; i < 400; i++) {
      const sub = join(dir, `d${i % 7}`);
      await mkdir(sub, { recursive: true });
      await writeFile(join(sub, `f${i}.js`), Buffer.concat([noise(5_000 + i, i + 1), text(5_000 + (i % 13) * 100, i)]));
    }
    return dir;
  }

  it('has exactly the bytes of the same blocks compressed one by one in this thread', async () => {
    const entries = await collectEntries(await context('same'), 'app');
    const layer = await buildLayer(entries, 1_767_225_600);
    const plan = planTar(entries, 1_767_225_600);
    expect(plan.blocks).toBeGreaterThan(2); // more than IN_PROCESS_MAX_BLOCKS: the workers did it
    const cursor = { piece: 0 };
    const blocks = Array.from({ length: plan.blocks }, (_, i) => Buffer.from(processBlock(blockJob(plan, i, cursor)).compressed));
    expect(layer.bytes.subarray(10, layer.bytes.length - 8).equals(Buffer.concat(blocks))).toBe(true);
  });

  it('refuses a file that shrank after the context was listed, naming it', async () => {
    const dir = await context('shrinks');
    const entries = await collectEntries(dir, 'app');
    const victim = join(dir, `d${300 % 7}`, 'f300.js');
    await truncate(victim, 10);
    await expect(buildLayer(entries, 1_767_225_600)).rejects.toMatchObject({ code: 'IMAGE_CONTEXT_CHANGED', message: expect.stringContaining(victim) });
  });
});
