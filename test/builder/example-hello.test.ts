import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createServiceRepo, type ServiceRepo } from '../support/fixtures/service-repo.js';

async function startHello(dir: string, env: Record<string, string> = {}): Promise<{ base: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['server.js'], { cwd: dir, env: { PATH: process.env.PATH ?? '', PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    const m = /listening on (\d+)/.exec(line);
    if (m) return { base: `http://127.0.0.1:${m[1]}`, child };
  }
  throw new Error('hello did not start');
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

describe('the hello sample service repository', () => {
  let repo: ServiceRepo;
  beforeAll(async () => {
    repo = await createServiceRepo({ version: '2.1.0' });
  });
  afterAll(async () => {
    await repo?.cleanup();
  });

  it('gets the same commit id for the same options on every run', async () => {
    const again = await createServiceRepo({ version: '2.1.0' });
    try {
      expect(again.commit).toBe(repo.commit);
      expect(await again.git('ls-files')).toContain('.slipway/pipeline.yaml');
    } finally {
      await again.cleanup();
    }
  });

  it('answers /healthz and its version on the port given in PORT', async () => {
    const { base, child } = await startHello(repo.dir);
    try {
      expect(await (await fetch(`${base}/healthz`)).text()).toBe('ok\n');
      expect(await (await fetch(`${base}/`)).json()).toMatchObject({ service: 'hello', version: '2.1.0' });
    } finally {
      await stop(child);
    }
  });

  describe('when HELLO_ERROR_RATE is 0.25', () => {
    it('answers exactly one request in four with HTTP 500', async () => {
      const { base, child } = await startHello(repo.dir, { HELLO_ERROR_RATE: '0.25' });
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 20; i++) {
          const res = await fetch(`${base}/`);
          await res.arrayBuffer();
          statuses.push(res.status);
        }
        expect(statuses.filter((s) => s === 500)).toHaveLength(5);
        expect(statuses.filter((s) => s === 200)).toHaveLength(15);
      } finally {
        await stop(child);
      }
    });
  });

  it('commits a new version with setVersion', async () => {
    const before = repo.commit;
    const after = await repo.setVersion('2.2.0');
    expect(after).not.toBe(before);
    expect(await repo.git('show', `${after}:package.json`)).toContain('"version": "2.2.0"');
  });
});
