import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileAuditLog, StateStore, writeFileAtomic } from '../../../controller/state/index.js';
import { initialState } from '../../../controller/rollout/index.js';
import type { AuditEntry } from '../../../controller/reconcile/index.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'slipway-state-test-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const entry = (id: string): AuditEntry => ({ id, at: '2026-11-23T10:00:00.000Z', environment: 'staging', service: 'web', action: 'Test', actor: 'test', message: id });

describe('the audit log', () => {
  it('records an entry once however often a replay records it', async () => {
    const log = new FileAuditLog(join(dir, 'audit.jsonl'));
    await log.record(entry('a'));
    await log.recordMany([entry('a'), entry('b'), entry('b')]);
    expect((await log.list()).map((e) => e.id)).toEqual(['a', 'b']);
    const reopened = new FileAuditLog(join(dir, 'audit.jsonl'));
    await reopened.record(entry('a'));
    expect(readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
  });

  describe('when a kill tore the last line mid-write', () => {
    it('skips the torn line and starts the next entry on a line of its own', async () => {
      const path = join(dir, 'audit.jsonl');
      const log = new FileAuditLog(path);
      await log.record(entry('a'));
      appendFileSync(path, '{"id":"b","at":"2026-11');
      const after = new FileAuditLog(path);
      await after.record(entry('c'));
      expect((await after.list()).map((e) => e.id)).toEqual(['a', 'c']);
    });
  });
});

describe('the state store', () => {
  it('replaces a record atomically and leaves no temp files behind', async () => {
    const store = new StateStore(dir);
    await store.saveService({ environment: 'staging', service: 'web', state: initialState('staging', 'web') });
    await store.saveService({ environment: 'staging', service: 'web', state: { ...initialState('staging', 'web'), generation: 2 } });
    expect((await store.loadService('staging', 'web'))?.state.generation).toBe(2);
    expect(readdirSync(join(dir, 'environments/staging/services'))).toEqual(['web.json']);
    expect(await store.listServices('staging')).toEqual(['web']);
  });

  it('refuses names that would climb out of its directory', async () => {
    const store = new StateStore(dir);
    await expect(store.loadService('staging', '../../etc/passwd')).rejects.toThrow('not a valid name');
  });

  it('writes through a temp file and a rename', async () => {
    await writeFileAtomic(join(dir, 'x', 'f.json'), '{"v":1}');
    await writeFileAtomic(join(dir, 'x', 'f.json'), '{"v":2}');
    expect(readFileSync(join(dir, 'x', 'f.json'), 'utf8')).toBe('{"v":2}');
    expect(readdirSync(join(dir, 'x'))).toEqual(['f.json']);
  });
});
