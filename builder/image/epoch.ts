/** The image timestamp (every file's mtime and the config's `created`): SOURCE_DATE_EPOCH when set and valid, else the commit time. */
export function imageEpoch(commitTime: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw !== undefined && /^\d+$/.test(raw.trim())) return Number(raw.trim());
  return commitTime;
}
