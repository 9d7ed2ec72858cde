import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatProblem, validateFile, type FileKind } from '../../schemas/index.js';
import { EXAMPLE_DIR, listFiles } from '../lib/envrepo/gitrepo.js';

/** Which schema each file of the example environments repository follows. */
function kindOf(path: string): FileKind | undefined {
  if (path === 'slipway.yaml') return 'Slipway';
  if (path === 'quarantine.yaml') return 'Quarantine';
  if (path === 'templates/service.yaml' || /^[^/]+\/services\/[^/]+\.yaml$/.test(path)) return 'Service';
  if (/^[^/]+\/environment\.yaml$/.test(path)) return 'Environment';
  if (/^[^/]+\/freeze\.yaml$/.test(path)) return 'FreezeWindows';
  return undefined;
}

describe('the example environments repository', () => {
  const yamlFiles = listFiles(EXAMPLE_DIR).filter((f) => f.endsWith('.yaml'));

  it('has staging and production, one hello service in each, and a freeze window in production', () => {
    expect(yamlFiles).toEqual(
      expect.arrayContaining(['slipway.yaml', 'staging/environment.yaml', 'staging/services/hello.yaml', 'production/environment.yaml', 'production/freeze.yaml', 'production/services/hello.yaml', 'templates/service.yaml']),
    );
  });

  it.each(yamlFiles)('%s validates clean against its schema', (file) => {
    const kind = kindOf(file);
    expect(kind).toBeDefined();
    const result = validateFile(kind!, readFileSync(join(EXAMPLE_DIR, file), 'utf8'), file);
    expect(result.ok ? [] : result.problems.map(formatProblem)).toEqual([]);
  });

  it('keeps the service template pinned by digest, like every service file', () => {
    const result = validateFile('Service', readFileSync(join(EXAMPLE_DIR, 'templates', 'service.yaml'), 'utf8'), 'templates/service.yaml');
    expect(result.ok && result.value.spec.image.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});
