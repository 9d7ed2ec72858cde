import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { Readable } from 'node:stream';
import { buildImage, imageEpoch, LABEL_REVISION, LABEL_SOURCE } from '../../../builder/image/index.js';
import { computeDigest, openImageStore, pushImage } from '../../../lib/oci/index.js';

const execFileAsync = promisify(execFile);
const spec = { context: 'dist', entrypoint: ['node', 'server.js'], cmd: ['--port', '8080'], env: { NODE_ENV: 'production', A: '1' }, workingDir: '/app', exposedPort: 8080, labels: { team: 'web' } };
const source = { url: 'https://git.example/hello.git', revision: 'a'.repeat(40) };
const epoch = 1_767_225_600; // 2026-01-01T00:00:00Z

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'slipway-image-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The same files written in a different order, with different mtimes and permissions. */
async function writeContext(dir: string, variant: number): Promise<void> {
  await mkdir(join(dir, 'lib/deep'), { recursive: true });
  const files: [string, string][] = [
    ['server.js', 'console.log(1)\n'],
    ['lib/util.js', 'export {}\n'],
    ['lib/deep/data.json', '{"a":1}\n'],
    ['B-upper.txt', 'upper\n'],
    ['a-lower.txt', 'lower\n'],
  ];
  for (const [name, body] of variant ? [...files].reverse() : files) {
    await writeFile(join(dir, name), body);
    await chmod(join(dir, name), variant ? 0o664 : 0o600);
    await utimes(join(dir, name), 1000 + variant * 7777, 2000 + variant * 9999);
  }
  await writeFile(join(dir, 'run.sh'), '#!/bin/sh\n');
  await chmod(join(dir, 'run.sh'), variant ? 0o775 : 0o700);
  await symlink('lib/util.js', join(dir, 'util-link.js'));
  await chmod(join(dir, 'lib'), variant ? 0o775 : 0o700);
}

async function tarEntries(gz: Uint8Array): Promise<tar.Header[]> {
  const extract = tar.extract();
  const headers: tar.Header[] = [];
  const reading = (async () => {
    for await (const entry of extract) {
      headers.push(entry.header);
      entry.resume();
    }
  })();
  Readable.from([gunzipSync(gz)]).pipe(extract);
  await reading;
  return headers;
}

describe('image builder', () => {
  describe('when the same output is built in two places with different mtimes, modes and write order', () => {
    it('gives byte-identical images', async () => {
      const one = join(tmp, 'one/dist');
      const two = join(tmp, 'two/dist');
      await writeContext(one, 0);
      await writeContext(two, 1);
      const a = await buildImage({ contextDir: one, spec, source, epoch });
      const b = await buildImage({ contextDir: two, spec, source, epoch });
      expect(b.digest).toBe(a.digest);
      expect(Buffer.compare(Buffer.from(a.blobs[1]!.bytes!), Buffer.from(b.blobs[1]!.bytes!))).toBe(0);
      expect(a.digest).toBe(computeDigest(a.manifestBytes));
    });
  });

  describe('the layer', () => {
    it('holds sorted entries under the workingDir with uid/gid 0, the fixed mtime and normalized modes', async () => {
      const dir = join(tmp, 'layer/dist');
      await writeContext(dir, 0);
      const image = await buildImage({ contextDir: dir, spec, source, epoch });
      const headers = await tarEntries(image.blobs[1]!.bytes!);
      expect(headers.map((h) => h.name)).toEqual([
        'app/',
        'app/B-upper.txt',
        'app/a-lower.txt',
        'app/lib/',
        'app/lib/deep/',
        'app/lib/deep/data.json',
        'app/lib/util.js',
        'app/run.sh',
        'app/server.js',
        'app/util-link.js',
      ]);
      for (const h of headers) {
        expect([h.uid, h.gid, h.uname ?? '', h.gname ?? '']).toEqual([0, 0, '', '']);
        expect(h.mtime?.getTime()).toBe(epoch * 1000);
      }
      const mode = (name: string) => headers.find((h) => h.name === name)!.mode;
      expect(mode('app/lib/')).toBe(0o755);
      expect(mode('app/run.sh')).toBe(0o755);
      expect(mode('app/server.js')).toBe(0o644);
      expect(headers.find((h) => h.name === 'app/util-link.js')).toMatchObject({ type: 'symlink', linkname: 'lib/util.js' });
      const gz = Buffer.from(image.blobs[1]!.bytes!);
      // mtime 0, XFL 4 (zlib's "fastest" mark for the fixed level 1), OS 3 (Unix).
      expect([...gz.subarray(4, 10)]).toEqual([0, 0, 0, 0, 4, 3]);
      expect(image.config.rootfs?.diff_ids).toEqual([computeDigest(gunzipSync(gz))]);
    });

    it('refuses a symlink that points outside the context', async () => {
      const dir = join(tmp, 'escape/dist');
      await mkdir(dir, { recursive: true });
      await symlink('../../secret', join(dir, 'leak'));
      await expect(buildImage({ contextDir: dir, spec, source, epoch })).rejects.toMatchObject({ code: 'IMAGE_CONTEXT_UNSAFE', message: expect.stringContaining('leak') });
    });

    it('says so when the build stage did not create the context', async () => {
      await expect(buildImage({ contextDir: join(tmp, 'nothing'), spec, source, epoch })).rejects.toMatchObject({ code: 'IMAGE_CONTEXT_MISSING' });
    });
  });

  describe('the config, as skopeo reads it', () => {
    it('has entrypoint, cmd, env, workingDir, exposed port and the source labels', async () => {
      const dir = join(tmp, 'cfg/dist');
      await writeContext(dir, 0);
      const image = await buildImage({ contextDir: dir, spec, source, epoch });
      const layout = join(tmp, 'cfg-layout');
      await pushImage(openImageStore(`oci:${layout}`), image, 'v1');
      const { stdout } = await execFileAsync('skopeo', ['inspect', '--config', `oci:${layout}:v1`]);
      const config = JSON.parse(stdout);
      expect(config.created).toBe('2026-01-01T00:00:00Z');
      expect(config.config).toEqual({
        Entrypoint: ['node', 'server.js'],
        Cmd: ['--port', '8080'],
        Env: ['A=1', 'NODE_ENV=production'],
        WorkingDir: '/app',
        ExposedPorts: { '8080/tcp': {} },
        Labels: { team: 'web', [LABEL_SOURCE]: source.url, [LABEL_REVISION]: source.revision, 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
      });
      const { stdout: raw } = await execFileAsync('skopeo', ['inspect', '--raw', `oci:${layout}:v1`]);
      expect(computeDigest(Buffer.from(raw))).toBe(image.digest);
    });
  });

  describe('the timestamp', () => {
    it('comes from SOURCE_DATE_EPOCH when set, else the commit time', () => {
      expect(imageEpoch(100, { SOURCE_DATE_EPOCH: '42' })).toBe(42);
      expect(imageEpoch(100, { SOURCE_DATE_EPOCH: 'soon' })).toBe(100);
      expect(imageEpoch(100, {})).toBe(100);
    });

    it('changes the digest when it changes', async () => {
      const dir = join(tmp, 'time/dist');
      await writeContext(dir, 0);
      const a = await buildImage({ contextDir: dir, spec, source, epoch });
      const b = await buildImage({ contextDir: dir, spec, source, epoch: epoch + 1 });
      expect(b.digest).not.toBe(a.digest);
    });
  });
});
