import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync, mkdirSync, rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const INSTANCE_ID_ENV = 'SLIPWAY_INSTANCE_ID';

interface RunFile {
  controllerPid: number;
  instances: Record<string, number>;
}

/**
 * The pids of every instance this target started, in `<dir>/<pid>-<nonce>.json`, rewritten atomically on each
 * start and exit. A file whose controller is dead lists orphans of a crashed run: `reapOrphans` kills them.
 * Written synchronously so a pid is on disk before the next event can kill the controller.
 */
export class RunState {
  private readonly file: string;
  private readonly instances = new Map<string, number>();

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, `${process.pid}-${randomBytes(4).toString('hex')}.json`);
    this.flush();
  }

  add(instanceId: string, pid: number): void {
    this.instances.set(instanceId, pid);
    this.flush();
  }

  remove(instanceId: string): void {
    if (this.instances.delete(instanceId)) this.flush();
  }

  dispose(): void {
    rmSync(this.file, { force: true });
  }

  private flush(): void {
    const body: RunFile = { controllerPid: process.pid, instances: Object.fromEntries(this.instances) };
    const temp = `${this.file}.tmp`;
    writeFileSync(temp, JSON.stringify(body));
    renameSync(temp, this.file);
  }
}

export interface ReapedOrphan {
  instanceId: string;
  pid: number;
}

/** Kills (SIGKILL, whole process group) instances recorded by controllers that are no longer alive. */
export function reapOrphans(dir: string): ReapedOrphan[] {
  const reaped: ReapedOrphan[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return reaped;
  }
  for (const name of names) {
    const match = /^(\d+)-[a-f0-9]+\.json(\.tmp)?$/.exec(name);
    if (!match) continue;
    const path = join(dir, name);
    if (isAlive(Number(match[1]))) continue;
    if (!match[2]) {
      let run: RunFile | undefined;
      try {
        run = JSON.parse(readFileSync(path, 'utf8')) as RunFile;
      } catch {
        run = undefined;
      }
      for (const [instanceId, pid] of Object.entries(run?.instances ?? {})) {
        if (isOurInstance(pid, instanceId)) {
          killGroup(pid, 'SIGKILL');
          reaped.push({ instanceId, pid });
        }
      }
    }
    rmSync(path, { force: true });
  }
  return reaped;
}

/** Guards against pid reuse: the process must carry the instance id we gave it. */
function isOurInstance(pid: number, instanceId: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    return environ.split('\u0000').includes(`${INSTANCE_ID_ENV}=${instanceId}`);
  } catch {
    // No /proc (not Linux) or not ours to read: only a live process in its own group is taken as ours.
    try {
      process.kill(-pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
