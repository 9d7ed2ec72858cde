/** `slipway status [--env E]`: services, digests, phases and weights, from the running controller's API. */
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { SlipwayError } from '../../lib/errors.js';
import type { EnvironmentStatus, ServiceStatus } from '../../controller/index.js';
import { fail } from './init.js';

interface StatusOptions {
  env?: string;
  url?: string;
  json?: boolean;
}

const short = (digest: string | undefined) => (digest ? digest.replace(/^sha256:/, '').slice(0, 12) : '-');

function note(s: ServiceStatus): string {
  if (s.gate) return `${s.gate.status} ${s.gate.code}: ${s.gate.message}`;
  return s.message ?? '';
}

export function renderTable(envs: EnvironmentStatus[]): string {
  const header = ['ENVIRONMENT', 'SERVICE', 'DESIRED', 'RUNNING', 'ROLLOUT', 'PHASE', 'STEP', 'STABLE/CANARY', 'NOTE'];
  const rows: string[][] = [];
  for (const e of envs) {
    if (e.rejectedCommit) rows.push([e.environment, '*', '-', '-', '-', 'Rejected', '-', '-', `commit ${e.rejectedCommit.slice(0, 12)} is invalid; staying on ${e.lastAppliedCommit?.slice(0, 12) ?? 'nothing'}`]);
    for (const s of e.services) {
      rows.push([
        e.environment,
        s.service,
        short(s.desiredDigest),
        short(s.runningDigest),
        short(s.rolloutDigest),
        s.phase,
        s.step.count ? `${s.step.index}/${s.step.count}` : '-',
        `${s.weights.stable}/${s.weights.canary}`,
        note(s),
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function register(program: Command): void {
  program
    .command('status')
    .summary('show what each environment runs, from the controller')
    .description('Asks the running controller (its address is in $SLIPWAY_HOME/controller/endpoint) for every service: desired and running digest, rollout phase, step and weights.')
    .option('--env <name>', 'only this environment')
    .option('--url <url>', 'the controller API (default: the address the local controller wrote)')
    .option('--json', 'print the API answer as JSON')
    .action(async (opts: StatusOptions) => {
      const { controllerSecret, endpointFile } = await import('../../controller/wiring.js');
      try {
        let url = opts.url ?? process.env.SLIPWAY_CONTROLLER_URL;
        if (!url) {
          if (!existsSync(endpointFile())) {
            throw new SlipwayError('NO_CONTROLLER', 'no controller is running here; start one with `slipway controller --repo <path>` or pass --url', 'stalling');
          }
          url = readFileSync(endpointFile(), 'utf8').trim();
        }
        const query = opts.env ? `?env=${encodeURIComponent(opts.env)}` : '';
        let res: Response;
        try {
          res = await fetch(`${url.replace(/\/$/, '')}/api/v1/environments${query}`, {
            headers: { authorization: `Bearer ${controllerSecret('token', 'SLIPWAY_CONTROLLER_TOKEN')}` },
          });
        } catch (err) {
          throw new SlipwayError('NO_CONTROLLER', `cannot reach the controller at ${url}: ${(err as Error).message}`, 'waiting');
        }
        const body = (await res.json()) as { environments?: EnvironmentStatus[]; error?: { message: string; field?: string } };
        if (!res.ok || !body.environments) throw new SlipwayError('API_ERROR', `controller answered ${res.status}: ${body.error?.message ?? 'no body'}`, 'generic');
        if (opts.json) process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
        else if (body.environments.length === 0) process.stdout.write(opts.env ? `no environment ${opts.env}\n` : 'nothing synced yet\n');
        else process.stdout.write(`${renderTable(body.environments)}\n`);
      } catch (err) {
        fail(err, opts.json);
      }
    });
}
