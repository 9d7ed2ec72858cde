/**
 * `slipway verify <repo@sha256:...> --policy <slipway.yaml>`: the check the controller runs before every
 * deploy, by hand. Exit 0 and who built it from what; exit 1 and a refusal code; exit 2 when it could not
 * decide (bad input, registry unreachable).
 */
import type { Command } from 'commander';
import { SlipwayError } from '../../lib/errors.js';
import { homePath } from '../../lib/home.js';
import type { VerificationResult } from '../../lib/provenance/index.js';

interface VerifyOptions {
  policy: string;
  service?: string;
  json?: boolean;
  cache: boolean;
}

export function register(program: Command): void {
  program
    .command('verify')
    .summary('verify who built an image from what source')
    .description('verify the signed SLSA provenance of an image against the trust policy of slipway.yaml')
    .argument('<image>', 'image by digest: host:port/name@sha256:<hex> or oci:<dir>@sha256:<hex>')
    .requiredOption('--policy <file>', 'the slipway.yaml whose trust section decides (its keys are read relative to it)')
    .option('--service <name>', 'service whose allowed sources apply (default: the last part of the repository name)')
    .option('--json', 'print the result as JSON')
    .option('--no-cache', `do not read or write the verification cache (${homePath('cache', 'verify')})`)
    .addHelpText(
      'after',
      '\nExit status: 0 verified; 1 refused (NO_ATTESTATION, BAD_SIGNATURE, UNTRUSTED_KEY, SUBJECT_MISMATCH,\n' +
        'UNTRUSTED_BUILDER, SOURCE_NOT_ALLOWED, KEY_EXPIRED, MALFORMED); 2 could not decide (bad input, store unreachable).',
    )
    .action(async (image: string, opts: VerifyOptions) => {
      const { openImageStore, parseImageRef } = await import('../../lib/oci/index.js');
      const ref = parseImageRef(image);
      if (!ref.digest) {
        throw new SlipwayError('INVALID_REFERENCE', `"${image}" names no digest: verify takes repo@sha256:<hex>, a tag is never verified or deployed`, 'stalling');
      }
      // Loaded here, not at startup: sigstore-js is only needed when verifying.
      const { VerificationCache, loadTrustPolicyFile, verifyImage } = await import('../../lib/provenance/index.js');
      const { policy, publicKeys } = loadTrustPolicyFile(opts.policy);
      const service = opts.service ?? serviceOf(ref.repository);
      const result = await verifyImage({
        store: openImageStore(ref.repository),
        repository: ref.repository,
        digest: ref.digest,
        service,
        policy,
        publicKeys,
        cache: opts.cache ? new VerificationCache({ dir: homePath('cache', 'verify') }) : undefined,
      });
      process.stdout.write(opts.json ? `${JSON.stringify({ image: `${ref.repository}@${ref.digest}`, service, ...result }, null, 2)}\n` : describe(`${ref.repository}@${ref.digest}`, service, result));
      process.exitCode = result.ok ? 0 : 1;
    });
}

/** `127.0.0.1:5000/acme/web` → `web`; `oci:./out/web` → `web`. */
function serviceOf(repository: string): string {
  const parts = repository.replace(/^oci:/, '').split('/').filter(Boolean);
  return parts[parts.length - 1] ?? repository;
}

function describe(image: string, service: string, result: VerificationResult): string {
  if (!result.ok) return `refused ${image} (service ${service})\n  ${result.code}: ${result.message}\n`;
  const p = result.provenance;
  const lines = [
    `verified ${image} (service ${service})`,
    `  built by   ${p.builderId}${p.builderVersion ? ` (slipway ${p.builderVersion})` : ''}`,
    `  from       ${p.sourceRepo} ${p.sourceRef} at ${p.sourceCommit}`,
    `  signed by  key ${p.keyName}`,
  ];
  if (p.startedOn || p.finishedOn) lines.push(`  built      ${p.startedOn ?? '?'} → ${p.finishedOn ?? '?'}`);
  return `${lines.join('\n')}\n`;
}
