import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import * as tarStream from 'tar-stream';
import { buildLayer, collectEntries } from '../../../builder/image/layer.js';
import { padding, tarHeader, TAR_END } from '../../../builder/image/tar.js';

const execFileAsync = promisify(execFile);
const mtime = 1_767_225_600;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'slipway-tar-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const longDir = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(60)}`;
const cases = [
  { path: 'app', type: 'directory' as const, mode: 0o755 },
  { path: 'app/short.txt', type: 'file' as const, mode: 0o644, body: 'short\n' },
  // > 100 bytes, splits into ustar prefix + name.
  { path: `app/${longDir}/split.txt`, type: 'file' as const, mode: 0o755, body: 'split\n' },
  // A last component over 100 bytes: only a pax header can hold it.
  { path: `app/${'n'.repeat(120)}.txt`, type: 'file' as const, mode: 0o644, body: 'pax\n' },
  { path: 'app/ünïcode-名前.txt', type: 'file' as const, mode: 0o644, body: 'utf8\n' },
  { path: 'app/link', type: 'symlink' as const, mode: 0o777, linkname: 'short.txt' },
  { path: 'app/far-link', type: 'symlink' as const, mode: 0o777, linkname: `${longDir}/${'g'.repeat(80)}` },
];

function archive(): Buffer {
  const parts: Buffer[] = [];
  for (const c of cases) {
    const body = Buffer.from(c.body ?? '');
    parts.push(tarHeader({ path: c.path, type: c.type, mode: c.mode, size: body.length, mtimeSeconds: mtime, ...(c.linkname ? { linkname: c.linkname } : {}) }));
    if (body.length) parts.push(body, Buffer.alloc(padding(body.length)));
  }
  parts.push(TAR_END);
  return Buffer.concat(parts);
}

describe('tar headers written for a layer', () => {
  it('are read back by tar-stream with names, modes, owner, mtime and link targets intact', async () => {
    const extract = tarStream.extract();
    Readable.from([archive()]).pipe(extract);
    const seen: { name: string; type?: string | null; mode?: number; uid?: number; gid?: number; mtime?: Date; linkname?: string | null; body: string }[] = [];
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      const h = entry.header;
      seen.push({ name: h.name, type: h.type, mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime, linkname: h.linkname, body: Buffer.concat(chunks).toString() });
    }
    expect(seen.map((s) => s.name)).toEqual(cases.map((c) => (c.type === 'directory' ? `${c.path}/` : c.path)));
    for (const [i, c] of cases.entries()) {
      expect(seen[i]).toMatchObject({ type: c.type, mode: c.mode, uid: 0, gid: 0, body: c.body ?? '' });
      expect(seen[i]!.mtime?.getTime()).toBe(mtime * 1000);
      if (c.linkname) expect(seen[i]!.linkname).toBe(c.linkname);
    }
  });

  it('are extracted by the system tar', async () => {
    const file = join(tmp, 'layer.tar');
    await writeFile(file, archive());
    const { stdout } = await execFileAsync('tar', ['-tf', file]);
    expect(stdout.trim().split('\n')).toEqual(cases.map((c) => (c.type === 'directory' ? `${c.path}/` : c.path)));
    await execFileAsync('tar', ['-xf', file, '-C', tmp]);
    expect(await readFile(join(tmp, `app/${'n'.repeat(120)}.txt`), 'utf8')).toBe('pax\n');
    expect(await readFile(join(tmp, `app/${longDir}/split.txt`), 'utf8')).toBe('split\n');
    expect(await readFile(join(tmp, 'app/ünïcode-名前.txt'), 'utf8')).toBe('utf8\n');
    expect(await readlink(join(tmp, 'app/far-link'))).toBe(`${longDir}/${'g'.repeat(80)}`);
  });

  it('are the same bytes when a layer is built from a directory holding those entries', async () => {
    // The layer writes short headers only when their block is handed out and long ones up front: same tar either way.
    const dir = join(tmp, 'context');
    for (const c of cases.slice(1)) {
      const target = join(dir, c.path.slice('app/'.length));
      await mkdir(dirname(target), { recursive: true });
      if (c.type === 'symlink') await symlink(c.linkname!, target);
      else {
        await writeFile(target, c.body ?? '');
        await chmod(target, c.mode);
      }
    }
    const entries = await collectEntries(dir, 'app');
    const layer = await buildLayer(entries, mtime);
    const file = join(tmp, 'built.tar.gz');
    await writeFile(file, layer.bytes);
    const { stdout } = await execFileAsync('tar', ['-tvzf', file], { timeout: 30_000 });
    const listed = stdout.trim().split('\n');
    for (const c of cases.slice(1)) expect(listed.some((line) => line.endsWith(c.type === 'symlink' ? `${c.path} -> ${c.linkname}` : c.path))).toBe(true);
    // Byte for byte: the file entries' headers in the layer are the ones tarHeader writes.
    const tar = gunzipSync(layer.bytes);
    const expected = tarHeader({ path: `app/${'n'.repeat(120)}.txt`, type: 'file', mode: 0o644, size: 4, mtimeSeconds: mtime });
    expect(tar.includes(expected)).toBe(true);
    expect(tar.includes(tarHeader({ path: 'app/short.txt', type: 'file', mode: 0o644, size: 6, mtimeSeconds: mtime }))).toBe(true);
  });
});
