/**
 * Commit-message trailers (`Key: value` lines in the last paragraph), the same shape `git interpret-trailers`
 * writes and `git log --format=%(trailers)` reads. Slipway keeps everything it needs to know about a
 * proposal, an approval or a merge in them, so the history explains itself without Slipway.
 */

export type Trailers = [key: string, value: string][];

export const TRAILER = {
  image: 'Slipway-Image',
  provenance: 'Slipway-Provenance',
  sourceCommit: 'Slipway-Source-Commit',
  sourceRepo: 'Slipway-Source-Repo',
  sourceRef: 'Slipway-Source-Ref',
  environment: 'Slipway-Environment',
  service: 'Slipway-Service',
  previousDigest: 'Slipway-Previous-Digest',
  rollback: 'Slipway-Rollback',
  approvedBy: 'Slipway-Approved-By',
  proposal: 'Slipway-Proposal',
  mergedBy: 'Slipway-Merged-By',
  freezeOverride: 'Slipway-Freeze-Override',
  supersededBy: 'Slipway-Superseded-By',
  closed: 'Slipway-Closed',
} as const;

function oneLine(value: string): string {
  return value.replace(/\s*\n\s*/g, ' ').trim();
}

/** `subject`, an optional body, then the trailer block. Values are folded onto one line. */
export function formatMessage(subject: string, body: string | undefined, trailers: Trailers): string {
  const parts = [oneLine(subject)];
  if (body && body.trim()) parts.push(body.trim());
  const block = trailers.filter(([, v]) => v !== '').map(([k, v]) => `${k}: ${oneLine(v)}`);
  if (block.length > 0) parts.push(block.join('\n'));
  return `${parts.join('\n\n')}\n`;
}

/** Trailers of the last paragraph of `message` (only when every line of it is a trailer, as git requires). */
export function parseTrailers(message: string): Trailers {
  const paragraphs = message.trim().split(/\n\s*\n/);
  if (paragraphs.length < 2) return [];
  const lines = paragraphs[paragraphs.length - 1]!.split('\n');
  const out: Trailers = [];
  for (const line of lines) {
    const m = /^([A-Za-z0-9][A-Za-z0-9-]*):\s*(.*)$/.exec(line);
    if (!m) return [];
    out.push([m[1]!, m[2]!.trim()]);
  }
  return out;
}

export function trailer(trailers: Trailers, key: string): string | undefined {
  const lower = key.toLowerCase();
  return trailers.find(([k]) => k.toLowerCase() === lower)?.[1];
}

export function trailerAll(trailers: Trailers, key: string): string[] {
  const lower = key.toLowerCase();
  return trailers.filter(([k]) => k.toLowerCase() === lower).map(([, v]) => v);
}
