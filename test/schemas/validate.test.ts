import { formatProblem, validateFile, type FileKind } from '../../schemas/index.js';

const service = `apiVersion: slipway.dev/v1
kind: Service
metadata:
  name: web
spec:
  image:
    repository: 127.0.0.1:5000/web
    digest: sha256:${'a'.repeat(64)}
  replicas: 2
  port: 8080
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause:
            duration: 1m
        - setWeight: 100
`;

const freeze = `apiVersion: slipway.dev/v1
kind: FreezeWindows
spec:
  windows:
    - name: year-end
      start: "2026-12-20T00:00"
      end: "2027-01-04T09:00"
      timeZone: Europe/Berlin
    - name: weekend
      cron: "0 16 * * 5"
      duration: 64h
      timeZone: UTC
`;

const environment = `apiVersion: slipway.dev/v1
kind: Environment
metadata:
  name: production
spec:
  target:
    type: local
  autoMerge: false
`;

const pipeline = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata:
  name: web
spec:
  stages:
    - name: test
      command: npm test
      timeout: 5m
  image:
    context: dist
`;

function problemsOf(kind: FileKind, text: string, file = 'production/services/web.yaml'): string[] {
  const result = validateFile(kind, text, file);
  return result.ok ? [] : result.problems.map(formatProblem);
}

describe('validating one file', () => {
  describe('when it is correct', () => {
    it.each([
      ['Service', service],
      ['FreezeWindows', freeze],
      ['Environment', environment],
      ['Pipeline', pipeline],
    ] as const)('accepts a %s and returns its typed value', (kind, text) => {
      const result = validateFile(kind, text, 'f.yaml');
      expect(result).toMatchObject({ ok: true, value: { kind } });
    });
  });

  describe('when it breaks a rule, it names file:line:col, the field path and what to do', () => {
    it.each([
      [
        'a digest that is a tag',
        'Service',
        service.replace(/digest: sha256:a+/, 'digest: latest'),
        'production/services/web.yaml:8:13 spec.image.digest: must be a sha256 digest (sha256:<64 hex>), got "latest"; a tag is never deployed, pin the image by its digest',
      ],
      [
        'an unknown field (with the likely intended one)',
        'Service',
        service.replace('  port: 8080', '  port: 8080\n  replics: 3'),
        'production/services/web.yaml:11:3 spec.replics: unknown field "replics" (did you mean "replicas"?); allowed fields: image, replicas, port, proxyPort, healthPath, env, strategy, slos, analysis',
      ],
      ['a wrong type', 'Service', service.replace('port: 8080', 'port: "eighty"'), 'production/services/web.yaml:10:9 spec.port: must be a whole number, got "eighty"'],
      [
        'a canary step list that never reaches 100',
        'Service',
        service.replace('setWeight: 100', 'setWeight: 80'),
        'production/services/web.yaml:17:22 spec.strategy.canary.steps[2].setWeight: canary steps end at weight 80 and never reach 100; add `- setWeight: 100` as the last weight step so the new version takes all traffic',
      ],
      [
        'a canary step that is two steps at once',
        'Service',
        service.replace('- setWeight: 20', '- setWeight: 20\n          pause: {}'),
        'production/services/web.yaml:14:11 spec.strategy.canary.steps[0]: must set exactly one of setWeight, pause, analysis, got setWeight and pause',
      ],
      [
        'malformed YAML, where the parser finds the syntax error',
        'Service',
        service.replace('  replicas: 2', '  replicas: [2'),
        'production/services/web.yaml:10:3 malformed YAML: flow sequence in block collection must be sufficiently indented and end with a ]',
      ],
      [
        'tabs as indentation',
        'Service',
        service.replace('  port: 8080', '\tport: 8080'),
        'production/services/web.yaml:10:1 malformed YAML: tabs are not allowed as indentation; indent with spaces',
      ],
      [
        'a duplicate key',
        'Service',
        service.replace('  port: 8080', '  port: 8080\n  port: 9090'),
        'production/services/web.yaml:11:3 spec.port: duplicate key "port": a key may appear only once in a mapping; remove or merge one of them',
      ],
      ['a wrong kind', 'Service', service.replace('kind: Service', 'kind: Servic'), 'production/services/web.yaml:2:7 kind: must be "Service" (this file is read as a Service), got "Servic"'],
      ['a missing required field', 'Service', service.replace('  port: 8080\n', ''), 'production/services/web.yaml:5:1 spec.port: required field "port" is missing in spec'],
      ['an empty file', 'Service', '', 'production/services/web.yaml:1:1 the file is empty; expected a Service document (apiVersion, kind, spec)'],
      [
        'an unknown target type',
        'Environment',
        environment.replace('type: local', 'type: cloud'),
        'production/services/web.yaml:7:11 spec.target.type: must be one of "local" or "kubernetes", got "cloud"',
      ],
      [
        'an unknown time zone',
        'FreezeWindows',
        freeze.replace('Europe/Berlin', 'Mars/Base'),
        'production/services/web.yaml:8:17 spec.windows[0].timeZone: unknown time zone "Mars/Base"; use an IANA name such as Europe/Berlin or UTC',
      ],
      [
        'a cron expression without five fields',
        'FreezeWindows',
        freeze.replace('0 16 * * 5', '0 16 * *'),
        'production/services/web.yaml:10:13 spec.windows[1].cron: must be a five-field cron expression (minute hour day-of-month month day-of-week), got "0 16 * *"',
      ],
      [
        'a freeze range that ends before it starts',
        'FreezeWindows',
        freeze.replace('2027-01-04T09:00', '2026-12-01T09:00'),
        'production/services/web.yaml:7:12 spec.windows[0].end: must be after start (2026-12-20T00:00), got "2026-12-01T09:00"',
      ],
      [
        'a freeze window that is neither a range nor recurring',
        'FreezeWindows',
        freeze.replace('      cron: "0 16 * * 5"\n', ''),
        'production/services/web.yaml:9:7 spec.windows[1].cron: required field "cron" is missing in spec.windows[1]',
      ],
      ['a duration in the wrong unit', 'Pipeline', pipeline.replace('5m', '5 minutes'), 'production/services/web.yaml:9:16 spec.stages[0].timeout: must be a duration such as 30s, 5m, 1h30m or 250ms, got "5 minutes"'],
    ] as const)('reports %s', (_what, kind, text, expected) => {
      expect(problemsOf(kind, text)).toEqual([expected]);
    });
  });

  describe('when it breaks several rules', () => {
    it('reports every problem at once, in file order', () => {
      const broken = service
        .replace(/digest: sha256:a+/, 'digest: v1.2.3')
        .replace('replicas: 2', 'replicas: -1')
        .replace('setWeight: 100', 'setWeight: 50')
        .replace('  port: 8080', '  port: 8080\n  colour: blue');
      const problems = problemsOf('Service', broken);
      expect(problems.map((p) => p.split(' ')[0])).toEqual([
        'production/services/web.yaml:8:13',
        'production/services/web.yaml:9:13',
        'production/services/web.yaml:11:3',
        'production/services/web.yaml:18:22',
      ]);
    });
  });

  describe('when the input is hostile', () => {
    it('refuses an alias bomb instead of expanding it', () => {
      const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
        .concat(Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`))
        .join('\n');
      const result = validateFile('Service', bomb, 'bomb.yaml');
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.problems[0]!.message).toMatch(/malformed YAML|alias/i);
    });
  });
});
