/** Debian's prometheus on 127.0.0.1 (free port), with a config given as an object; stopped and cleaned up by stop(). */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './apiserver.js';

export interface RunningPrometheus {
  url: string;
  dir: string;
  stop(): Promise<void>;
  logs(): string;
}

export async function startPrometheus(config: Record<string, unknown>): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-prom-'));
  writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
  const port = await freePort();
  const out: Buffer[] = [];
  const child: ChildProcess = spawn(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (b: Buffer) => out.push(b));
  child.stderr?.on('data', (b: Buffer) => out.push(b));
  const url = `http://127.0.0.1:${port}`;
  const logs = () => Buffer.concat(out).toString('utf8').slice(-4000);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      const text = logs();
      await stop();
      throw new Error(`prometheus exited: ${text}`);
    }
    const ok = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.ok, () => false);
    if (ok) return { url, dir, stop, logs };
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`prometheus not ready in 30 s: ${logs()}`);
}
