/** Job records as one JSON file each under a directory, written atomically (temp file, fsync, rename). */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../state/index.js';
import type { JobRecord, JobStore } from './types.js';

const RECORD = /^[A-Za-z0-9][A-Za-z0-9._-]*\.json$/;

export class FileJobStore implements JobStore {
  constructor(
    readonly dir: string,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  async loadAll(): Promise<JobRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const records: JobRecord[] = [];
    for (const name of names.filter((n) => RECORD.test(n))) {
      const path = join(this.dir, name);
      try {
        const record = JSON.parse(await readFile(path, 'utf8')) as JobRecord;
        if (record?.kind !== 'PipelineJob' || `${record.id}.json` !== name) throw new Error('not a pipeline job record');
        records.push(record);
      } catch (err) {
        // Atomic writes make a torn record impossible; anything else here was put by hand.
        this.log(`pipelines: ignoring ${path}: ${(err as Error).message}`);
      }
    }
    return records;
  }

  save(record: JobRecord): Promise<void> {
    return writeFileAtomic(join(this.dir, `${record.id}.json`), `${JSON.stringify(record, null, 2)}\n`);
  }

  remove(id: string): Promise<void> {
    return rm(join(this.dir, `${id}.json`), { force: true });
  }
}
