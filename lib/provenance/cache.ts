/**
 * Verified results by (digest, service, policy hash, key set hash). Only acceptances are kept: a refusal may be
 * cured by attaching a good attestation later, and must not stick. A kept acceptance is dropped once the signing
 * key leaves its validity window, so an expired key is never hidden by the cache.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PreparedPolicy } from './policy.js';
import type { VerificationResult } from './types.js';

type Accepted = Extract<VerificationResult, { ok: true }>;

interface Entry {
  result: Accepted;
  validFrom?: number;
  validUntil?: number;
}

export interface VerificationCacheOptions {
  /** Most entries kept in memory (least recently used go first). Default 10,000. */
  maxEntries?: number;
  /** Also keep entries on disk here (e.g. `$SLIPWAY_HOME/cache/verify`), so short-lived processes share them. */
  dir?: string;
}

export class VerificationCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly dir?: string;
  hits = 0;
  misses = 0;

  constructor(options: VerificationCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.dir = options.dir;
  }

  get(key: string, now: Date): Accepted | undefined {
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
    } else {
      entry = this.readDisk(key);
    }
    if (!entry || !withinWindow(entry, now.getTime())) {
      this.misses++;
      return undefined;
    }
    this.entries.set(key, entry);
    this.hits++;
    return entry.result;
  }

  set(key: string, result: Accepted, window: { validFrom?: Date; validUntil?: Date }): void {
    const entry: Entry = { result, validFrom: window.validFrom?.getTime(), validUntil: window.validUntil?.getTime() };
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.writeDisk(key, entry);
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }

  private readDisk(key: string): Entry | undefined {
    if (!this.dir) return undefined;
    try {
      const entry = JSON.parse(readFileSync(join(this.dir, fileNameOf(key)), 'utf8')) as Entry;
      return entry?.result?.ok === true ? entry : undefined;
    } catch {
      return undefined;
    }
  }

  private writeDisk(key: string, entry: Entry): void {
    if (!this.dir) return;
    try {
      mkdirSync(this.dir, { recursive: true });
      const file = join(this.dir, fileNameOf(key));
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(entry));
      renameSync(tmp, file);
    } catch {
      // A cache that cannot be written only costs a re-verification.
    }
  }
}

/** The in-memory key: plain concatenation (no hashing on the warm path); hashed only to name the disk file. */
export function cacheKeyOf(digest: string, service: string, prepared: PreparedPolicy): string {
  return `${digest}\n${service}\n${prepared.policyHash}\n${prepared.keySetHash}`;
}

function fileNameOf(key: string): string {
  return `${createHash('sha256').update(key).digest('hex')}.json`;
}

function withinWindow(entry: Entry, now: number): boolean {
  return (entry.validFrom === undefined || now >= entry.validFrom) && (entry.validUntil === undefined || now <= entry.validUntil);
}
