/**
 * Rollback commit messages: written the way `git revert` writes them (so people and tools read them as
 * reverts), plus Slipway trailers; and the reverse, telling a rollback commit (ours or a person's own
 * `git revert`) from any other commit, so freeze windows can let it through.
 */

export const TRAILER_ROLLBACK = 'Slipway-Rollback';
export const TRAILER_REVERTS = 'Slipway-Reverts';
export const TRAILER_BAD_DIGEST = 'Slipway-Bad-Digest';
export const TRAILER_RESTORED_DIGEST = 'Slipway-Restored-Digest';

export interface RollbackMessageInput {
  environment: string;
  service: string;
  /** The commit being reverted and its subject line. */
  revertedCommit: string;
  revertedSubject: string;
  badDigest: string;
  restoredDigest: string;
  reason: string;
  /** Analysis summary: the failed SLO and its numbers. */
  summary?: string;
  actor: string;
  /** Set when the revert did not apply cleanly and the digest was written back explicitly: why. */
  explicitBecause?: string;
  quarantined: boolean;
}

export function rollbackMessage(m: RollbackMessageInput): string {
  const lines = [
    `Revert "${m.revertedSubject}"`,
    '',
    `This reverts commit ${m.revertedCommit}.`,
    '',
    `Roll ${m.service} in ${m.environment} back from ${m.badDigest} to ${m.restoredDigest}: ${oneLine(m.reason)}`,
  ];
  if (m.summary) lines.push('', ...wrapSummary(m.summary));
  if (m.explicitBecause) {
    lines.push('', `The change did not revert cleanly (${oneLine(m.explicitBecause)}), so the previous digest was written back explicitly; other changes since are kept.`);
  }
  if (m.quarantined) lines.push('', `${m.badDigest} is quarantined in quarantine.yaml: automation will not propose it again until a person removes it.`);
  lines.push(
    '',
    `${TRAILER_ROLLBACK}: ${m.environment}/${m.service} by ${oneLine(m.actor)}`,
    `${TRAILER_REVERTS}: ${m.revertedCommit}`,
    `${TRAILER_BAD_DIGEST}: ${m.badDigest}`,
    `${TRAILER_RESTORED_DIGEST}: ${m.restoredDigest}`,
  );
  return lines.join('\n') + '\n';
}

/** The analysis summary as message lines: one per failed SLO ("; "-separated in the verdict summary). */
function wrapSummary(summary: string): string[] {
  return summary
    .split(/;\s+(?=[a-zA-Z][\w ]*: )/)
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => `  ${oneLine(s)}`);
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

/** Trailers of a commit message (`Key: value` lines of the last paragraph), as `git interpret-trailers --parse` sees them. */
export function parseTrailers(message: string): Record<string, string[]> {
  const paragraphs = message.trim().split(/\n\s*\n/);
  const last = paragraphs.length > 1 ? paragraphs[paragraphs.length - 1]! : '';
  const out: Record<string, string[]> = {};
  const lines = last.split('\n');
  if (!lines.every((l) => /^[A-Za-z0-9-]+:\s/.test(l) || /^\s+\S/.test(l))) return {};
  for (const line of lines) {
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
    if (m) (out[m[1]!] ??= []).push(m[2]!.trim());
  }
  return out;
}

/** The commit a revert reverts: the `Slipway-Reverts` trailer, or git's own "This reverts commit <sha>." line. */
export function revertedCommitOf(message: string): string | undefined {
  const trailer = parseTrailers(message)[TRAILER_REVERTS]?.[0];
  if (trailer && /^[0-9a-f]{7,64}$/.test(trailer)) return trailer;
  return /^This reverts commit ([0-9a-f]{7,64})\b/m.exec(message)?.[1];
}

/**
 * A rollback is a Slipway rollback commit, or a person's own `git revert` of a change (subject `Revert "..."`,
 * body "This reverts commit <sha>."). Reverting a revert puts the change back, so it is not a rollback:
 * git names that `Reapply "..."` (git 2.43+) or `Revert "Revert "..."` (older git).
 */
export function isRollbackCommit(commit: { message: string }): boolean {
  const { message } = commit;
  if (parseTrailers(message)[TRAILER_ROLLBACK]) return true;
  const subject = message.split('\n', 1)[0]!.trim();
  if (!/^This reverts commit [0-9a-f]{7,64}\b/m.test(message)) return false;
  if (!subject.startsWith('Revert "')) return false;
  let depth = 0;
  let rest = subject;
  while (rest.startsWith('Revert "')) {
    depth++;
    rest = rest.slice('Revert "'.length);
  }
  return depth % 2 === 1;
}
