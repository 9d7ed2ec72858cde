/**
 * A service file that does not exist yet is made from the template in the environments repository
 * (`templates/service.yaml`, which people can read and edit): its name, repository and digest are set,
 * everything else (port, strategy, SLOs, the comments explaining them) is kept as the template says.
 */
import { isScalar } from 'yaml';
import { SlipwayError } from '../errors.js';
import { assertDigest, bumpDigest, parseServiceDocument } from './digest.js';

/** Where the template lives, relative to the root of the environments repository. */
export const SERVICE_TEMPLATE_PATH = 'templates/service.yaml';

export interface NewService {
  service: string;
  repository: string;
  digest: string;
}

export function createServiceFile(template: string, values: NewService, file = SERVICE_TEMPLATE_PATH): string {
  assertDigest(values.digest);
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(values.service) || values.service.length > 63) {
    throw new SlipwayError(
      'BAD_SERVICE_NAME',
      `"${values.service}" is not a valid service name (lowercase letters, digits and '-', at most 63 characters)`,
      'stalling',
      { service: values.service },
    );
  }
  const doc = parseServiceDocument(template, file);
  const name = doc.getIn(['metadata', 'name'], true);
  let text = template;
  if (isScalar(name) && name.range) {
    text = text.slice(0, name.range[0]) + values.service + text.slice(name.range[1]);
  } else {
    doc.setIn(['metadata', 'name'], values.service);
    text = doc.toString();
  }
  const bumped = bumpDigest(text, { digest: values.digest, repository: values.repository }, file);
  return bumped.content;
}
