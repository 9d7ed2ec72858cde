import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { layerHintPath, readLayerHint, writeLayerHint } from '../../../builder/cache/index.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'slipway-layer-hint-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('layer size hints', () => {
  const hello = { sourceUrl: 'file:///src/hello', pipeline: 'hello' };

  it('reads back what the last build of a service wrote, and only for that service', async () => {
    const path = layerHintPath(root, hello);
    expect(await readLayerHint(path)).toBeUndefined();
    await writeLayerHint(path, { files: 5050, tarBytes: 52_000_000 });
    await writeLayerHint(path, { files: 2, tarBytes: 5632 }); // the newest wins
    expect(await readLayerHint(path)).toEqual({ files: 2, tarBytes: 5632 });
    expect(layerHintPath(root, { ...hello, pipeline: 'other' })).not.toBe(path);
    expect(layerHintPath(root, { ...hello, sourceUrl: 'file:///src/other' })).not.toBe(path);
    expect((await readdir(dirname(path))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('treats a malformed hint as none', async () => {
    const path = layerHintPath(root, { sourceUrl: 'file:///src/broken', pipeline: 'broken' });
    await mkdir(dirname(path), { recursive: true });
    for (const text of ['{not json', '{"files":-1,"tarBytes":10}', '{"files":1.5,"tarBytes":10}', '{"files":3}', '[]']) {
      await writeFile(path, text);
      expect(await readLayerHint(path)).toBeUndefined();
    }
  });

  it('writes nothing, and does not throw, where it cannot write', async () => {
    const blocked = join(root, 'blocked');
    await writeFile(blocked, 'a file where the hints directory would go');
    await expect(writeLayerHint(join(blocked, 'layer-hints', 'x.json'), { files: 1, tarBytes: 1 })).resolves.toBeUndefined();
  });
});
