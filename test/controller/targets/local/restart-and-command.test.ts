import { describe, expect, it } from '@jest/globals';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_RESTART_POLICY, decideRestart, processCommand, type CachedImage } from '../../../../controller/targets/local/index.js';

describe('restart backoff', () => {
  const policy = { initialBackoffMs: 1_000, maxBackoffMs: 8_000, stableUptimeMs: 60_000, crashLoopThreshold: 5 };

  it('doubles the delay with each crash in a row, up to the cap', () => {
    let history = { consecutiveCrashes: 0 };
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const decision = decideRestart(policy, history, 500);
      delays.push(decision.delayMs);
      history = { consecutiveCrashes: decision.consecutiveCrashes };
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
  });

  it('calls it a crash loop at the threshold', () => {
    expect(decideRestart(policy, { consecutiveCrashes: 3 }, 10).crashLoop).toBe(false);
    expect(decideRestart(policy, { consecutiveCrashes: 4 }, 10).crashLoop).toBe(true);
  });

  it('starts again from the first delay after an instance ran for the stable uptime', () => {
    expect(decideRestart(policy, { consecutiveCrashes: 4 }, 60_000)).toEqual({ consecutiveCrashes: 1, delayMs: 1_000, crashLoop: false });
  });

  it('has defaults a person would expect: 1 s first, capped at a minute', () => {
    expect(DEFAULT_RESTART_POLICY).toMatchObject({ initialBackoffMs: 1_000, maxBackoffMs: 60_000 });
  });
});

describe('the command an image runs', () => {
  let root: string;
  const image = (config: CachedImage['config']): CachedImage => ({ digest: `sha256:${'a'.repeat(64)}`, rootfs: root, config });

  it('is Entrypoint then Cmd, with absolute paths inside the image mapped into its root and host commands left to PATH', async () => {
    root = await mkdtemp(join(tmpdir(), 'slipway-rootfs-'));
    try {
      await mkdir(join(root, 'app'), { recursive: true });
      await writeFile(join(root, 'app', 'server.js'), '');
      const command = processCommand(image({ Entrypoint: ['node'], Cmd: ['/app/server.js', '--flag', '/not/in/image'], WorkingDir: '/app', Env: ['PATH=/usr/local/bin', 'MODE=prod', 'BROKEN'] }));
      expect(command).toEqual({
        file: 'node',
        args: [join(root, 'app', 'server.js'), '--flag', '/not/in/image'],
        cwd: join(root, 'app'),
        env: { MODE: 'prod' },
      });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('runs in the image root when WorkingDir is unset, and cannot escape it with ..', () => {
    root = '/tmp/slipway-no-such-root';
    expect(processCommand(image({ Cmd: ['run'] })).cwd).toBe(root);
    expect(processCommand(image({ Cmd: ['run'], WorkingDir: '../../etc' })).cwd).toBe(join(root, 'etc'));
    expect(processCommand(image({ Cmd: ['run'], WorkingDir: '/app/../../../etc/' })).cwd).toBe(join(root, 'etc'));
  });

  it('refuses an image with neither Entrypoint nor Cmd, saying what is missing', () => {
    root = '/tmp/slipway-no-such-root';
    expect(() => processCommand(image({}))).toThrow(/neither Entrypoint nor Cmd/);
  });
});
