import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePipeline, runPipeline, createProgressReporter, type Pipeline, type PipelineEvent, type RunPipelineOptions } from '../../../builder/pipeline/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-run-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function pipeline(stages: string): Promise<Pipeline> {
  return parsePipeline(`apiVersion: slipway.dev/v1
kind: Pipeline
metadata:
  name: t
spec:
  stages:
${stages}
  image:
    context: out
`);
}

async function options(stagesYaml: string, extra: Partial<RunPipelineOptions> = {}): Promise<RunPipelineOptions> {
  return {
    pipeline: await pipeline(stagesYaml),
    workDir: dir,
    logDir: join(dir, 'logs'),
    facts: { branch: 'main' },
    baseEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
    killGraceMs: 200,
    ...extra,
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never happened: ${what}`);
}

describe('pipeline runner', () => {
  describe('when every stage succeeds', () => {
    it('runs the stages in order in the checkout and keeps a log per stage', async () => {
      const run = await runPipeline(
        await options(`    - name: lint
      command: echo linting > order.txt
    - name: test
      command: [sh, -c, "echo testing >> order.txt; echo test-output"]
`),
      );
      expect(run.status).toBe('succeeded');
      expect(run.stages.map((s) => [s.name, s.status, s.exitCode])).toEqual([
        ['lint', 'succeeded', 0],
        ['test', 'succeeded', 0],
      ]);
      expect(await readFile(join(dir, 'order.txt'), 'utf8')).toBe('linting\ntesting\n');
      expect(run.stages[1]!.logPath).toBe(join(dir, 'logs', '02-test.log'));
      expect(await readFile(run.stages[1]!.logPath!, 'utf8')).toBe('test-output\n');
      expect(run.stages.every((s) => s.durationMs >= 0)).toBe(true);
    });
  });

  describe('when a stage fails', () => {
    it('stops the pipeline, skips the rest and quotes the last lines of its log', async () => {
      const run = await runPipeline(
        await options(`    - name: test
      command: "for i in $(seq 1 40); do echo line $i; done; echo boom >&2; exit 3"
    - name: build
      command: touch built
`),
      );
      expect(run.status).toBe('failed');
      expect(run.stages.map((s) => s.status)).toEqual(['failed', 'skipped']);
      expect(run.stages[0]!.exitCode).toBe(3);
      expect(run.failure!.stage).toBe('test');
      expect(run.failure!.message).toMatch(/^stage "test" failed with exit code 3 after/);
      expect(run.failure!.message).toContain('last 20 lines of');
      expect(run.failure!.message).toContain('| boom');
      expect(run.failure!.message).not.toContain('| line 20\n');
      expect(run.failure!.tail.slice(-2)).toEqual(['line 40', 'boom']);
      await expect(readFile(join(dir, 'built'))).rejects.toThrow();
    });

    it('says a command that does not exist could not start', async () => {
      const run = await runPipeline(await options(`    - name: lint\n      command: [no-such-binary-slipway]\n`));
      expect(run.status).toBe('failed');
      expect(run.failure!.message).toContain('could not start');
      expect(run.failure!.message).toContain('ENOENT');
    });
  });

  describe('when a stage hangs past its timeout', () => {
    it('kills its whole process group, including children it started', async () => {
      const pidFile = join(dir, 'child.pid');
      let parentPid = 0;
      const run = await runPipeline(
        await options(
          `    - name: hang
      command: "sleep 300 & echo $! > child.pid; echo started; wait"
      timeout: 1s
`,
          {
            onEvent: (e: PipelineEvent) => {
              if (e.type === 'output') parentPid = 1;
            },
          },
        ),
      );
      expect(parentPid).toBe(1);
      expect(run.status).toBe('failed');
      expect(run.stages[0]!.status).toBe('timed-out');
      expect(run.failure!.message).toMatch(/stage "hang" timed out after 1\.0s and was killed/);
      const child = Number((await readFile(pidFile, 'utf8')).trim());
      await until(() => !alive(child), 'the background sleep is killed');
      expect(await readFile(run.stages[0]!.logPath!, 'utf8')).toContain('process group killed');
    });
  });

  describe('when a stage leaves a process running in the background', () => {
    it('kills it when the stage ends', async () => {
      const run = await runPipeline(await options(`    - name: bg\n      command: "(sleep 300 >/dev/null 2>&1 &) ; sleep 300 >/dev/null 2>&1 & echo $! > bg.pid"\n`));
      expect(run.status).toBe('succeeded');
      const pid = Number((await readFile(join(dir, 'bg.pid'), 'utf8')).trim());
      await until(() => !alive(pid), 'the background process is reaped');
    });
  });

  describe('when a stage has parallelism 3', () => {
    it('runs three shards with SLIPWAY_SHARD_INDEX and SLIPWAY_SHARD_TOTAL, each with its own log', async () => {
      const run = await runPipeline(await options(`    - name: test\n      parallelism: 3\n      command: echo shard $SLIPWAY_SHARD_INDEX of $SLIPWAY_SHARD_TOTAL > shard-$SLIPWAY_SHARD_INDEX.txt\n`));
      expect(run.status).toBe('succeeded');
      expect(run.stages[0]!.shards.map((s) => s.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
      for (const i of [0, 1, 2]) expect(await readFile(join(dir, `shard-${i}.txt`), 'utf8')).toBe(`shard ${i} of 3\n`);
      expect(run.stages[0]!.shards.map((s) => s.logPath)).toEqual([0, 1, 2].map((i) => join(dir, 'logs', `01-test.shard-${i}.log`)));
    });

    it('fails the stage when one shard fails and cancels the others', async () => {
      const run = await runPipeline(
        await options(`    - name: test\n      parallelism: 3\n      command: 'if [ "$SLIPWAY_SHARD_INDEX" = 1 ]; then echo shard one broke; exit 1; fi; sleep 300'\n`),
      );
      expect(run.status).toBe('failed');
      const statuses = run.stages[0]!.shards.map((s) => s.status);
      expect(statuses).toEqual(['cancelled', 'failed', 'cancelled']);
      expect(run.failure!.message).toContain('stage "test" (shard 2 of 3) failed with exit code 1');
      expect(run.failure!.message).toContain('| shard one broke');
    });
  });

  describe('when a condition is false for the branch', () => {
    it('skips the stage and says why', async () => {
      const run = await runPipeline(
        await options(`    - name: deploy-docs\n      condition: branch == main\n      command: touch docs\n`, { facts: { branch: 'feature/x' } }),
      );
      expect(run.status).toBe('succeeded');
      expect(run.stages[0]).toMatchObject({ status: 'skipped', reason: 'condition "branch == main" is false (branch feature/x)' });
    });
  });

  describe('the stage environment', () => {
    it('holds only PATH, HOME, the stage env and SLIPWAY_* variables', async () => {
      process.env.SLIPWAY_TEST_LEAK_CHECK = 'outer';
      try {
        const run = await runPipeline(
          await options(`    - name: env\n      env:\n        GREETING: hi\n      command: env | sort > env.txt\n`, {
            slipwayEnv: { SLIPWAY_COMMIT: 'abc', NOT_SLIPWAY: 'x' },
          }),
        );
        expect(run.status).toBe('succeeded');
        const names = (await readFile(join(dir, 'env.txt'), 'utf8'))
          .trim()
          .split('\n')
          .map((l) => l.split('=')[0])
          .filter((n) => n !== 'PWD' && n !== 'SHLVL' && n !== '_');
        expect(names.sort()).toEqual(['GREETING', 'HOME', 'PATH', 'SLIPWAY_COMMIT', 'SLIPWAY_SHARD_INDEX', 'SLIPWAY_SHARD_TOTAL', 'SLIPWAY_STAGE']);
      } finally {
        delete process.env.SLIPWAY_TEST_LEAK_CHECK;
      }
    });
  });

  describe('when a stage floods its output', () => {
    it('caps the log, keeps draining, and still fails cleanly with the last lines', async () => {
      const run = await runPipeline(
        await options(`    - name: flood\n      command: "head -c 3000000 /dev/zero | tr '\\\\0' x | fold -w 100; echo; echo last words; exit 7"\n`, { maxLogBytes: 64 * 1024 }),
      );
      expect(run.status).toBe('failed');
      const shard = run.stages[0]!.shards[0]!;
      expect(shard.truncated).toBe(true);
      expect(shard.outputBytes).toBeGreaterThan(3_000_000);
      const log = await readFile(shard.logPath, 'utf8');
      expect(log.length).toBeLessThan(64 * 1024 + 200);
      expect(log).toContain('log capped at 65536 bytes');
      expect(run.failure!.message).toContain('exit code 7');
      expect(run.failure!.tail).toContain('last words');
    });
  });

  describe('when the build is cancelled', () => {
    it('kills the running stage and skips the rest', async () => {
      const controller = new AbortController();
      const running = runPipeline(
        await options(`    - name: slow\n      command: sleep 300\n    - name: after\n      command: touch after\n`, {
          signal: controller.signal,
          onEvent: (e) => {
            if (e.type === 'stage-started') setTimeout(() => controller.abort(), 50);
          },
        }),
      );
      const run = await running;
      expect(run.status).toBe('cancelled');
      expect(run.stages.map((s) => s.status)).toEqual(['cancelled', 'skipped']);
    });
  });
});

describe('progress output', () => {
  const events = (at: number): PipelineEvent[] => [
    { type: 'stage-started', stage: 'test', index: 0, total: 2, shards: 2, at },
    {
      type: 'stage-finished',
      index: 0,
      total: 2,
      at: at + 1500,
      result: { name: 'test', status: 'succeeded', exitCode: 0, durationMs: 1500, shards: [], logPath: '/l' },
    },
  ];

  it('redraws one line with stage and elapsed time on a terminal', () => {
    let out = '';
    let now = 10_000;
    const reporter = createProgressReporter({ isTTY: true, write: (t: string) => (out += t) }, { clock: { now: () => now }, intervalMs: 60_000 });
    const [started, finished] = events(now);
    reporter.onEvent(started!);
    now += 1500;
    reporter.onEvent(finished!);
    reporter.stop();
    expect(out).toContain('\r\x1b[2K[1/2] test (2 shards) 0ms');
    expect(out).toContain('[1/2] test         ok           1.5s\n');
  });

  it('writes plain lines elsewhere', () => {
    let out = '';
    const reporter = createProgressReporter({ write: (t: string) => (out += t) }, { clock: { now: () => 0 } });
    for (const e of events(0)) reporter.onEvent(e);
    expect(out).toBe('[1/2] test started (2 shards)\n[1/2] test         ok           1.5s\n');
  });
});
