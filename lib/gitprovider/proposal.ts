/**
 * What every provider proposes for a digest change, whatever carries it (a local branch or a GitHub PR): the
 * service file as it will read after the change, and the commit subject and trailers that describe it.
 */
import { SlipwayError } from '../errors.js';
import { bumpDigest, createServiceFile, SERVICE_TEMPLATE_PATH } from '../bump/index.js';
import { assertValidServiceFile, servicePath, type FileReader } from './state.js';
import { TRAILER, type Trailers } from './trailers.js';
import type { DigestChange } from './types.js';

export type ServiceFileEdit =
  | { status: 'already-updated'; path: string }
  | { status: 'edited'; path: string; content: string; previousDigest?: string };

/** The service file at `main` with the change applied (created from the template when the service is new). */
export async function editServiceFile(files: FileReader, main: string, change: DigestChange): Promise<ServiceFileEdit> {
  const path = servicePath(change.environment, change.service);
  const current = await files.readFile(main, path);
  if (current === undefined) {
    const template = await files.readFile(main, SERVICE_TEMPLATE_PATH);
    if (template === undefined) {
      throw new SlipwayError(
        'NO_SERVICE_TEMPLATE',
        `${path} does not exist and there is no ${SERVICE_TEMPLATE_PATH} to create it from; add the template (slipway init writes one) or the service file`,
        'stalling',
        { file: path },
      );
    }
    const content = createServiceFile(template, { service: change.service, repository: change.repository, digest: change.digest }, SERVICE_TEMPLATE_PATH);
    assertValidServiceFile(content, path);
    return { status: 'edited', path, content };
  }
  const bumped = bumpDigest(current, { digest: change.digest, repository: change.repository }, path);
  if (bumped.status === 'already-updated') return { status: 'already-updated', path };
  assertValidServiceFile(bumped.content, path);
  return { status: 'edited', path, content: bumped.content, ...(bumped.previousDigest ? { previousDigest: bumped.previousDigest } : {}) };
}

/** The proposal commit's subject and trailers (Slipway-Image, -Provenance, -Source-Commit, ...). */
export function proposalCommitText(change: DigestChange, previousDigest: string | undefined): { subject: string; trailers: Trailers } {
  const trailers: Trailers = [
    [TRAILER.environment, change.environment],
    [TRAILER.service, change.service],
    [TRAILER.image, `${change.repository}@${change.digest}`],
    [TRAILER.previousDigest, previousDigest ?? ''],
    [TRAILER.provenance, change.provenance ?? ''],
    [TRAILER.sourceRepo, change.source?.repo ?? ''],
    [TRAILER.sourceRef, change.source?.ref ?? ''],
    [TRAILER.sourceCommit, change.source?.commit ?? ''],
  ];
  if (change.rollback) trailers.push([TRAILER.rollback, change.message?.split('\n')[0] ?? 'yes']);
  const verb = change.rollback ? 'Roll back' : 'Promote';
  return { subject: `${verb} ${change.service} to ${change.digest.slice(0, 19)} in ${change.environment}`, trailers };
}
