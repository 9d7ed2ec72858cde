import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { bumpDigest, createServiceFile, readDigest } from '../../../lib/bump/index.js';
import { isSlipwayError } from '../../../lib/errors.js';
import { validateFile } from '../../../schemas/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixture = (name: string) => readFileSync(join(here, '__fixtures__', name), 'utf8');
const OLD = `sha256:${'1'.repeat(64)}`;
const NEW = `sha256:${'ab'.repeat(32)}`;

function changedLines(before: string, after: string): string[] {
  const a = before.split('\n');
  const b = after.split('\n');
  expect(b).toHaveLength(a.length);
  return b.filter((line, i) => line !== a[i]);
}

describe('digest bump', () => {
  describe('on a service file full of comments', () => {
    const original = fixture('commented-service.yaml');
    const result = bumpDigest(original, { digest: NEW });

    it('reports updated and the previous digest', () => {
      expect(result.status).toBe('updated');
      expect(result.previousDigest).toBe(OLD);
    });

    it('changes only the digest line, keeping its quotes and trailing comment', () => {
      expect(changedLines(original, result.content)).toEqual([`    digest: "${NEW}"  # bumped by slipway`]);
    });

    it('keeps every other byte: comments, flow maps, block scalars, blank lines, key order', () => {
      expect(result.content.replace(NEW, OLD)).toBe(original);
      expect(Object.keys(parse(result.content).spec)).toEqual(['image', 'replicas', 'port', 'env', 'strategy']);
    });

    it('reports already-updated and changes nothing when run again', () => {
      const again = bumpDigest(result.content, { digest: NEW });
      expect(again.status).toBe('already-updated');
      expect(again.content).toBe(result.content);
    });

    it('updates the repository in its own quoting style when asked', () => {
      const moved = bumpDigest(original, { digest: NEW, repository: 'registry.example:5000/shop/web' });
      expect(changedLines(original, moved.content)).toEqual([
        "    repository: 'registry.example:5000/shop/web'     # single-quoted on purpose",
        `    digest: "${NEW}"  # bumped by slipway`,
      ]);
    });
  });

  it('keeps CRLF line endings and plain scalars', () => {
    const original = fixture('crlf-service.yaml');
    const { content } = bumpDigest(original, { digest: NEW });
    expect(content).toBe(original.replace(`sha256:${'2'.repeat(64)}`, NEW));
    expect(content.split('\r\n')).toHaveLength(original.split('\r\n').length);
  });

  it.each([
    ['a tag', 'latest'],
    ['a short digest', 'sha256:abcd'],
    ['another algorithm', `sha512:${'a'.repeat(128)}`],
    ['upper-case hex', `sha256:${'A'.repeat(64)}`],
  ])('refuses %s as the new digest', (_what, digest) => {
    expect.assertions(3);
    try {
      bumpDigest(fixture('commented-service.yaml'), { digest });
    } catch (err) {
      expect(isSlipwayError(err)).toBe(true);
      expect((err as { code: string }).code).toBe('BAD_DIGEST');
      expect((err as Error).message).toContain('sha256');
    }
  });

  it('names file, line and column when the YAML does not parse', () => {
    expect(() => bumpDigest('spec:\n  image: [unclosed\n', { digest: NEW }, 'staging/services/web.yaml')).toThrow(
      /staging\/services\/web\.yaml:\d+:\d+/,
    );
  });

  it('adds the digest when the image has none, keeping the comments', () => {
    const original = '# keep me\nspec:\n  image:\n    repository: r # and me\n  port: 1\n';
    const { content, status } = bumpDigest(original, { digest: NEW });
    expect(status).toBe('updated');
    expect(content).toContain('# keep me');
    expect(content).toContain('# and me');
    expect(readDigest(content)).toBe(NEW);
  });
});

describe('a new service file from the template', () => {
  const template = [
    '# A service Slipway created from templates/service.yaml; edit freely after the first promotion.',
    'apiVersion: slipway.dev/v1',
    'kind: Service',
    'metadata:',
    '  name: example # replaced by the service name',
    'spec:',
    '  image:',
    '    repository: localhost:5000/example',
    `    digest: sha256:${'0'.repeat(64)}`,
    '  port: 8080 # the port your app listens on',
    '',
  ].join('\n');

  it('sets name, repository and digest and keeps the rest of the template', () => {
    const text = createServiceFile(template, { service: 'checkout', repository: 'localhost:5000/checkout', digest: NEW });
    const doc = parse(text);
    expect(doc.metadata.name).toBe('checkout');
    expect(doc.spec.image).toEqual({ repository: 'localhost:5000/checkout', digest: NEW });
    expect(text).toContain('  port: 8080 # the port your app listens on');
    expect(text).toContain('  name: checkout # replaced by the service name');
  });

  it('refuses a service name the schema would refuse', () => {
    expect(() => createServiceFile(template, { service: 'Check_Out', repository: 'r', digest: NEW })).toThrow(/not a valid service name/);
  });
});

describe('the example environments repository', () => {
  const example = (path: string) => readFileSync(join(here, '..', '..', '..', 'environments', path), 'utf8');

  it('has a template that becomes a valid service file with its comments kept', () => {
    const text = createServiceFile(example('templates/service.yaml'), { service: 'checkout', repository: '127.0.0.1:5000/checkout', digest: NEW });
    const result = validateFile('Service', text, 'staging/services/checkout.yaml');
    expect(result.ok).toBe(true);
    expect(text).toContain('    # Always a full digest, never a tag.');
    expect(parse(text).metadata.name).toBe('checkout');
  });

  it('has service files the bump edits on one line', () => {
    const original = example('production/services/hello.yaml');
    const { content } = bumpDigest(original, { digest: NEW });
    expect(changedLines(original, content)).toHaveLength(1);
  });
});
