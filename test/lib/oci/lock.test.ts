import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { acquireFileLock, withFileLock } from '../../../lib/oci/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('file lock', () => {
  it('lets one holder in at a time; the next waits until release', async () => {
    const path = join(dir, 'x.lock');
    const order: string[] = [];
    const first = await acquireFileLock(path);
    let waitedFor: number | undefined;
    const second = withFileLock(
      path,
      async () => {
        order.push('second');
      },
      { onWait: (holder) => (waitedFor = holder.pid), pollMs: 5 },
    );
    await new Promise((r) => setTimeout(r, 50));
    order.push('first releases');
    await first.release();
    await second;
    expect(order).toEqual(['first releases', 'second']);
    expect(waitedFor).toBe(process.pid);
  });

  it('takes over a lock whose process is gone', async () => {
    const path = join(dir, 'stale.lock');
    const child = spawn(process.execPath, ['-e', '0']);
    const deadPid = await new Promise<number>((resolve) => child.on('exit', () => resolve(child.pid!)));
    await writeFile(path, `${deadPid} ${hostname()}\n`);
    const lock = await acquireFileLock(path, { timeoutMs: 5_000 });
    expect(await readFile(path, 'utf8')).toBe(`${process.pid} ${hostname()}\n`);
    await lock.release();
  });

  it('waits for a lock held by another live process, and times out with a waiting error', async () => {
    const path = join(dir, 'held.lock');
    const holder = spawn(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(path)}, process.pid + ' ' + require('os').hostname() + '\\n'); console.log('held'); setInterval(() => {}, 1000)`]);
    try {
      for await (const line of createInterface({ input: holder.stdout })) if (line === 'held') break;
      await expect(acquireFileLock(path, { timeoutMs: 200, pollMs: 10 })).rejects.toMatchObject({ code: 'LOCK_TIMEOUT', kind: 'waiting', message: expect.stringContaining(`held by pid ${holder.pid}`) });
    } finally {
      holder.kill('SIGKILL');
    }
    await new Promise((r) => holder.once('exit', r));
    const lock = await acquireFileLock(path, { timeoutMs: 5_000 });
    await lock.release();
  });
});
