/**
 * The real Debian `prometheus` on 127.0.0.1 with a free port and a temp TSDB, one per test file, scraping the
 * given loopback targets. Optional basic auth on its HTTP API (Prometheus' own `--web.config.file`, bcrypt).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { freePort } from './registry.js';

export interface TestPrometheus {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Basic auth header value when started with users. */
  authorization?: string;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** `host:port` targets to scrape (loopback only). */
  targets: string[];
  scrapeInterval?: string;
  /** One user for the HTTP API (basic auth). */
  user?: { name: string; password: string };
}

export async function startPrometheus(opts: PrometheusOptions): Promise<TestPrometheus> {
  for (const t of opts.targets) if (!t.startsWith('127.0.0.1:')) throw new Error(`tests scrape loopback only, not ${t}`);
  const dir = await mkdtemp(join(tmpdir(), 'slipway-prometheus-'));
  const interval = opts.scrapeInterval ?? '1s';
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    'scrape_configs:',
    '  - job_name: slipway',
    `    scrape_interval: ${interval}`,
    `    scrape_timeout: ${interval}`,
    '    static_configs:',
    `      - targets: [${opts.targets.map((t) => `'${t}'`).join(', ')}]`,
  ].join('\n');
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, config + '\n');
  const args = [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--log.level=warn'];
  let authorization: string | undefined;
  if (opts.user) {
    const webConfig = join(dir, 'web.yml');
    await writeFile(webConfig, `basic_auth_users:\n  ${opts.user.name}: '${bcrypt.hashSync(opts.user.password, 5)}'\n`);
    args.push(`--web.config.file=${webConfig}`);
    authorization = `Basic ${Buffer.from(`${opts.user.name}:${opts.user.password}`).toString('base64')}`;
  }
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn('prometheus', [...args, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    if (await waitReady(port, child, authorization)) {
      return {
        url: `http://127.0.0.1:${port}`,
        port,
        authorization,
        stop: async () => {
          await stopChild(child);
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    await stopChild(child);
    lastError = stderr;
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`prometheus did not start: ${lastError}`);
}

async function waitReady(port: number, child: ChildProcess, authorization: string | undefined): Promise<boolean> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/-/ready`, { headers: authorization ? { authorization } : {}, signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.status === 200) return true;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
