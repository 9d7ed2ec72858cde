/** `slipway build --envs <repo>`: after a successful build, land the new digest in the first environment. */
import { attestationLocation, landBuild, type Landing } from './promote.js';
import { actorOf, openProvider } from './cli.js';
import type { Verifier } from '../gitprovider/index.js';

export interface BuiltImage {
  /** The pipeline's metadata.name: the service. */
  service: string;
  repository: string;
  digest: string;
  source: { url: string; commit: string; branch?: string };
}

export async function landAfterBuild(envs: string, built: BuiltImage, options: { actor?: string; verify?: Verifier } = {}): Promise<Landing> {
  if (!built.source.branch) return { outcome: 'skipped', reason: 'the build is not on a branch (detached HEAD); only builds of deployable branches are proposed' };
  const opened = await openProvider({ repo: envs }, options.verify);
  return landBuild(
    opened,
    {
      service: built.service,
      repository: built.repository,
      digest: built.digest,
      source: { repo: built.source.url, ref: `refs/heads/${built.source.branch}`, commit: built.source.commit },
      provenance: attestationLocation(built.repository, built.digest),
    },
    actorOf(options.actor ?? process.env.SLIPWAY_ACTOR ?? 'slipway-builder'),
  );
}

export function describeLanding(landing: Landing): string {
  switch (landing.outcome) {
    case 'skipped':
      return `not proposed: ${landing.reason}`;
    case 'already-updated':
      return `${landing.environment} already runs ${landing.proposal.digest}`;
    case 'merged':
      return `merged into ${landing.environment}: ${landing.proposal.id}${landing.merge ? ` (${landing.merge.mergeCommit.slice(0, 12)})` : ''}`;
    case 'proposed':
      return `proposed to ${landing.environment}: ${landing.proposal.id}${landing.proposal.url ? ` ${landing.proposal.url}` : ''}${landing.held ? ` (not merged: ${landing.held.message})` : ''}`;
  }
}
