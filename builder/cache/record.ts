/** The cache's record of one build: what it was built from, its stage results and the image it made. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageResult } from '../pipeline/index.js';

export interface CacheKeyInput {
  builderVersion: string;
  tree: string;
  commit: string;
  /** sha256 of the pipeline file bytes. */
  pipelineDigest: string;
  /** Names of the stages whose conditions hold, in order. */
  plan: string[];
  sourceUrl: string;
  /** Seconds since the epoch used for mtimes and `created`. */
  epoch: number;
}

export interface CacheRecord {
  key: string;
  digest: string;
  input: CacheKeyInput;
  stages: StageResult[];
  startedAt: string;
  createdAt: string;
  layerDigest: string;
  configDigest: string;
}

export function cacheRecordPath(root: string, key: string): string {
  return join(root, 'records', `${key.replace(/^sha256:/, '')}.json`);
}

/** The record of `key` when it is there and well-formed (whether its image is still cached is not checked). */
export async function readCacheRecord(root: string, key: string): Promise<CacheRecord | undefined> {
  let record: CacheRecord;
  try {
    record = JSON.parse(await readFile(cacheRecordPath(root, key), 'utf8')) as CacheRecord;
  } catch {
    return undefined;
  }
  if (record?.key !== key || typeof record.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(record.digest) || !Array.isArray(record.stages)) return undefined;
  return record;
}
