import {
  DEFAULT_BUILDER_ID,
  SLIPWAY_BUILD_TYPE,
  buildProvenance,
  statementBytes,
  type BuildDescription,
} from '../../../builder/provenance/index.js';

const IMAGE = `sha256:${'a'.repeat(64)}`;
const BASE = `sha256:${'b'.repeat(64)}`;
const COMMIT = '0123456789abcdef0123456789abcdef01234567';

function build(overrides: Partial<BuildDescription> = {}): BuildDescription {
  return {
    image: { name: '127.0.0.1:5000/web', digest: IMAGE },
    source: { repo: 'https://git.example/acme/web', ref: 'refs/heads/main', commit: COMMIT },
    pipelinePath: '.slipway/pipeline.yaml',
    startedOn: '2026-11-23T10:00:00Z',
    finishedOn: new Date('2026-11-23T10:01:30Z'),
    builderVersion: '0.1.0',
    ...overrides,
  };
}

describe('SLSA v1 provenance for a build', () => {
  describe('for a plain build', () => {
    const statement = buildProvenance(build());

    it('is an in-toto Statement v1 about the image digest', () => {
      expect(statement._type).toBe('https://in-toto.io/Statement/v1');
      expect(statement.predicateType).toBe('https://slsa.dev/provenance/v1');
      expect(statement.subject).toEqual([{ name: '127.0.0.1:5000/web', digest: { sha256: 'a'.repeat(64) } }]);
    });

    it('records the source, the pipeline and the Slipway build type as the build definition', () => {
      const def = statement.predicate.buildDefinition;
      expect(def.buildType).toBe(SLIPWAY_BUILD_TYPE);
      expect(def.externalParameters).toEqual({
        source: { repo: 'https://git.example/acme/web', ref: 'refs/heads/main', commit: COMMIT },
        pipeline: '.slipway/pipeline.yaml',
      });
      expect(def.resolvedDependencies).toEqual([
        { uri: 'git+https://git.example/acme/web@refs/heads/main', digest: { gitCommit: COMMIT } },
      ]);
    });

    it('records the builder and the run times in run details', () => {
      const run = statement.predicate.runDetails;
      expect(run.builder).toEqual({ id: DEFAULT_BUILDER_ID, version: { slipway: '0.1.0' } });
      expect(run.metadata?.startedOn).toBe('2026-11-23T10:00:00.000Z');
      expect(run.metadata?.finishedOn).toBe('2026-11-23T10:01:30.000Z');
      expect(run.metadata?.invocationId).toMatch(/^urn:slipway:build:[a-f0-9]{32}$/);
    });

    it('is the same bytes every time for the same build (a pure function)', () => {
      expect(statementBytes(buildProvenance(build())).equals(statementBytes(statement))).toBe(true);
    });
  });

  describe('when the build started from a base image', () => {
    it('lists the base image by digest among the resolved dependencies', () => {
      const statement = buildProvenance(build({ baseImages: [{ name: '127.0.0.1:5000/node', digest: BASE }] }));
      expect(statement.predicate.buildDefinition.resolvedDependencies?.[1]).toEqual({
        name: '127.0.0.1:5000/node',
        uri: `127.0.0.1:5000/node@${BASE}`,
        digest: { sha256: 'b'.repeat(64) },
      });
    });
  });

  describe('when the builder names itself', () => {
    it('uses that builder id and invocation id', () => {
      const statement = buildProvenance(build({ builderId: 'https://ci.example/builder/v2', invocationId: 'run-42' }));
      expect(statement.predicate.runDetails.builder.id).toBe('https://ci.example/builder/v2');
      expect(statement.predicate.runDetails.metadata?.invocationId).toBe('run-42');
    });
  });

  describe('when the description is wrong', () => {
    it.each([
      ['a tag instead of a digest', { image: { name: 'x', digest: 'latest' } }, /image\.digest must be sha256/],
      ['a short commit', { source: { repo: 'r', ref: 'main', commit: 'abc123' } }, /source\.commit must be a full git commit/],
      ['a finish before the start', { finishedOn: '2026-11-23T09:00:00Z' }, /finishedOn .* is before startedOn/],
      ['an unreadable time', { startedOn: 'yesterday' }, /startedOn 'yesterday' is not a date-time/],
      ['a base image by tag', { baseImages: [{ name: 'node', digest: 'node:20' }] }, /baseImages\[0\]\.digest/],
    ])('refuses %s, naming the field', (_what, overrides, message) => {
      expect(() => buildProvenance(build(overrides as Partial<BuildDescription>))).toThrow(message);
    });
  });
});
