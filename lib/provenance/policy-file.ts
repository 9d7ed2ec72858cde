/**
 * Reading a trust policy from a `slipway.yaml` on disk (what `slipway verify --policy` does): the file is
 * validated against its schema, and each trusted key's PEM is read from its path relative to the file.
 * The controller gets the same two things from the environments repository instead (DesiredState).
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { SlipwayError } from '../errors.js';
import { publicKeyProblem } from '../keys/index.js';
import { formatProblem, validateFile, type TrustPolicy } from '../../schemas/index.js';

export interface LoadedTrustPolicy {
  file: string;
  policy: TrustPolicy;
  /** PEM public keys by trusted key name. */
  publicKeys: Record<string, string>;
}

export function loadTrustPolicyFile(path: string): LoadedTrustPolicy {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SlipwayError('POLICY_NOT_FOUND', `cannot read the policy ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, 'stalling', { file });
  }
  const validated = validateFile('Slipway', text, path);
  if (!validated.ok) {
    throw new SlipwayError(
      'INVALID_POLICY',
      `${path} is not a valid slipway.yaml:\n${validated.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`,
      'stalling',
      { problems: validated.problems },
    );
  }
  const policy = validated.value.spec.trust;
  const root = dirname(file);
  const publicKeys: Record<string, string> = {};
  policy.keys.forEach((key, i) => {
    const field = `${path} spec.trust.keys[${i}].publicKey`;
    const keyFile = resolve(root, key.publicKey);
    const inside = relative(root, keyFile);
    if (isAbsolute(key.publicKey) || inside.startsWith('..')) {
      throw new SlipwayError('INVALID_POLICY', `${field}: "${key.publicKey}" must be a path inside the repository that holds ${path}`, 'stalling', { field });
    }
    let pem: string;
    try {
      pem = readFileSync(keyFile, 'utf8');
    } catch (err) {
      throw new SlipwayError(
        'INVALID_POLICY',
        `${field}: cannot read ${keyFile} (${(err as NodeJS.ErrnoException).code ?? String(err)}); commit the key's public half there`,
        'stalling',
        { field },
      );
    }
    const problem = publicKeyProblem(pem);
    if (problem) throw new SlipwayError('INVALID_POLICY', `${field}: ${key.publicKey}: ${problem}`, 'stalling', { field });
    publicKeys[key.name] = pem;
  });
  return { file, policy, publicKeys };
}
