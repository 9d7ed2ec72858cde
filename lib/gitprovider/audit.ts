/** The promotion audit log: one JSON object per line, appended (never rewritten), one line per event. */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type AuditAction = 'proposed' | 'superseded' | 'approved' | 'merged' | 'override' | 'refused';

export interface AuditEvent {
  at: string;
  action: AuditAction;
  provider: 'local' | 'github';
  proposal: string;
  environment: string;
  service: string;
  digest: string;
  actor: string;
  commit?: string;
  reason?: string;
  code?: string;
  [extra: string]: unknown;
}

export interface AuditSink {
  append(event: AuditEvent): void;
}

export function fileAuditLog(path: string): AuditSink {
  return {
    append(event) {
      mkdirSync(dirname(path), { recursive: true });
      appendFileSync(path, `${JSON.stringify(event)}\n`);
    },
  };
}

export const noAudit: AuditSink = { append() {} };
