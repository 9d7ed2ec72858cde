import { mkdtemp, readFile, readlink, rm, stat, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpackLayers, parseImageRef, canonicalJson, parseWwwAuthenticate } from '../../../lib/oci/index.js';
import { tarGz } from '../../support/images.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-unpack-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('unpacking layers', () => {
  it('writes files, directories, modes and relative symlinks', async () => {
    const layer = await tarGz([
      { name: 'app/', type: 'directory' },
      { name: 'app/server.js', body: 'console.log(1)\n' },
      { name: 'app/run.sh', body: '#!/bin/sh\n', mode: 0o755 },
      { name: 'app/current', type: 'symlink', linkname: 'server.js' },
    ]);
    await unpackLayers([{ bytes: layer }], join(dir, 'root'));
    expect(await readFile(join(dir, 'root/app/server.js'), 'utf8')).toBe('console.log(1)\n');
    expect((await stat(join(dir, 'root/app/run.sh'))).mode & 0o777).toBe(0o755);
    expect(await readlink(join(dir, 'root/app/current'))).toBe('server.js');
  });

  it('applies whiteouts from upper layers', async () => {
    const lower = await tarGz([{ name: 'a.txt', body: 'a' }, { name: 'b.txt', body: 'b' }]);
    const upper = await tarGz([{ name: '.wh.a.txt', body: '' }]);
    await unpackLayers([{ bytes: lower }, { bytes: upper }], dir);
    await expect(lstat(join(dir, 'a.txt'))).rejects.toThrow();
    expect(await readFile(join(dir, 'b.txt'), 'utf8')).toBe('b');
  });

  describe.each([
    ['a path that climbs out', [{ name: '../escape.txt', body: 'x' }], 'escapes'],
    ['a path hidden in the middle', [{ name: 'a/../../escape.txt', body: 'x' }], 'escapes'],
    ['an absolute symlink', [{ name: 'link', type: 'symlink' as const, linkname: '/etc/passwd' }], 'absolute symlink'],
    ['a symlink pointing outside', [{ name: 'link', type: 'symlink' as const, linkname: '../../etc' }], 'points outside'],
    [
      'a write through a symlink',
      [
        { name: 'd', type: 'symlink' as const, linkname: '.' },
        { name: 'd/x', body: 'x' },
      ],
      'symlink',
    ],
  ])('when a layer holds %s', (_what, entries, why) => {
    it('refuses it with UNSAFE_LAYER', async () => {
      const layer = await tarGz(entries);
      await expect(unpackLayers([{ bytes: layer }], join(dir, 'root'))).rejects.toMatchObject({ code: 'UNSAFE_LAYER', message: expect.stringContaining(why) });
      await expect(stat(join(dir, 'escape.txt'))).rejects.toThrow();
    });
  });
});

describe('image references', () => {
  it.each([
    ['127.0.0.1:5000/hello@sha256:' + 'a'.repeat(64), { repository: '127.0.0.1:5000/hello', digest: 'sha256:' + 'a'.repeat(64) }],
    ['127.0.0.1:5000/team/hello:v1', { repository: '127.0.0.1:5000/team/hello', tag: 'v1' }],
    ['oci:/tmp/x:y@sha256:' + 'b'.repeat(64), { repository: 'oci:/tmp/x:y', digest: 'sha256:' + 'b'.repeat(64) }],
    ['localhost/hello', { repository: 'localhost/hello' }],
  ])('parses %s', (ref, expected) => {
    expect(parseImageRef(ref)).toEqual(expected);
  });

  it.each(['hello', 'host/x@sha256:abc', ''])('refuses "%s"', (ref) => {
    expect(() => parseImageRef(ref)).toThrow(expect.objectContaining({ code: 'INVALID_REFERENCE' }));
  });
});

describe('canonical JSON', () => {
  it('sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[{"y":2,"z":1}]},"b":1}');
  });
});

describe('WWW-Authenticate', () => {
  it('reads scheme and quoted parameters', () => {
    expect(parseWwwAuthenticate('Bearer realm="http://a/token",service="reg",scope="repository:x:pull,push"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'http://a/token', service: 'reg', scope: 'repository:x:pull,push' },
    });
    expect(parseWwwAuthenticate('Basic realm="r"')).toEqual({ scheme: 'basic', params: { realm: 'r' } });
  });
});
