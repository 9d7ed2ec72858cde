/** The layer's worker pool never keeps a process alive: `slipway build` ends when its work does. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const root = resolve(import.meta.dirname, '../../..');

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'slipway-workers-'));
  for (let i = 0; i < 4; i++) await writeFile(join(tmp, `f${i}.bin`), Buffer.alloc(1024 * 1024, i));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

/** Runs `code` (an ES module body) in a new Node process from the TypeScript sources; resolves with its stdout when it exits by itself. */
async function runAlone(code: string): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, timeout: 60_000, killSignal: 'SIGKILL' });
  return stdout;
}

describe('the layer worker pool', () => {
  it('lets the process exit once prepared and idle', async () => {
    const out = await runAlone(`
      const { prepareBlockWorkers, blockWorkers } = await import('./builder/image/workers.ts');
      await prepareBlockWorkers({ evenFromSource: true });
      console.log('workers', blockWorkers().size);
    `);
    expect(out).toMatch(/^workers [1-3]$/m);
  }, 90_000);

  it('lets the process exit after a layer was compressed on it', async () => {
    const out = await runAlone(`
      const { buildLayer, collectEntries } = await import('./builder/image/layer.ts');
      const layer = await buildLayer(await collectEntries(${JSON.stringify(tmp)}, 'app'), 0);
      console.log('layer', layer.digest);
    `);
    expect(out).toMatch(/^layer sha256:[0-9a-f]{64}$/m);
  }, 90_000);
});
