/**
 * The audit trail: JSON lines, appended and fsynced, never rewritten. Entries carry a unique id, so a
 * transition replayed after a crash is recorded once. A line torn by a kill in the middle of a write is
 * skipped when read and never glued to the next entry.
 */
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { appendLinesDurable } from './atomic.js';
import type { AuditEntry, AuditSink } from '../reconcile/types.js';

export class FileAuditLog implements AuditSink {
  private seen?: Set<string>;
  private needsNewline = false;
  private queue: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  private async init(): Promise<Set<string>> {
    if (this.seen) return this.seen;
    const seen = new Set<string>();
    const text = await this.readText();
    for (const entry of parseLines(text)) seen.add(entry.id);
    this.needsNewline = text.length > 0 && !text.endsWith('\n');
    this.seen = seen;
    return seen;
  }

  private async readText(): Promise<string> {
    try {
      return await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw err;
    }
  }

  record(entry: AuditEntry): Promise<void> {
    return this.recordMany([entry]);
  }

  recordMany(entries: AuditEntry[]): Promise<void> {
    // Appends are serialised so two reconciles never interleave bytes of one line.
    const run = this.queue.then(async () => {
      const seen = await this.init();
      const fresh = entries.filter((e, i) => !seen.has(e.id) && entries.findIndex((x) => x.id === e.id) === i);
      if (fresh.length === 0) return;
      const lines = fresh.map((e) => JSON.stringify(e));
      await appendLinesDurable(this.path, this.needsNewline ? ['', ...lines] : lines);
      this.needsNewline = false;
      for (const e of fresh) seen.add(e.id);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async list(filter: { environment?: string; service?: string } = {}): Promise<AuditEntry[]> {
    await this.queue;
    return parseLines(await this.readText()).filter(
      (e) => (!filter.environment || e.environment === filter.environment) && (!filter.service || e.service === filter.service),
    );
  }

  /** Touch the file so a reader finds it even before the first entry. */
  async ensure(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const handle = await open(this.path, 'a', 0o600);
    await handle.close();
  }
}

export function parseLines(text: string): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const entry = JSON.parse(line) as AuditEntry;
      if (entry && typeof entry.id === 'string') out.push(entry);
    } catch {
      // A torn final line from a kill mid-write: the entry was never acknowledged, so it is not lost.
    }
  }
  return out;
}
