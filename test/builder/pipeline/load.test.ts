import { parsePipeline } from '../../../builder/pipeline/index.js';

const valid = `apiVersion: slipway.dev/v1
kind: Pipeline
metadata:
  name: svc
spec:
  stages:
    - name: test
      command: npm test
      timeout: 1m30s
      parallelism: 3
      condition: branch == main
      env:
        CI: "1"
    - name: build
      command: [node, build.js]
  image:
    context: dist
    workingDir: /app
`;

async function problemsOf(text: string): Promise<{ line: number; column: number; path: string; message: string }[]> {
  try {
    await parsePipeline(text);
  } catch (err) {
    return (err as { data: { problems: { line: number; column: number; path: string; message: string }[] } }).data.problems;
  }
  throw new Error('expected the pipeline to be refused');
}

describe('reading .slipway/pipeline.yaml', () => {
  it('normalizes stages: shell commands, argv commands, timeouts, shards, conditions and env', async () => {
    const p = await parsePipeline(valid);
    expect(p.name).toBe('svc');
    expect(p.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(p.stages[0]).toMatchObject({ name: 'test', argv: ['sh', '-c', 'npm test'], timeoutMs: 90_000, parallelism: 3, env: { CI: '1' } });
    expect(p.stages[0]!.condition?.text).toBe('branch == main');
    expect(p.stages[1]).toMatchObject({ argv: ['node', 'build.js'], timeoutMs: 30 * 60_000, parallelism: 1 });
  });

  describe('when the file breaks the schema', () => {
    it('names file, line, column and field of every problem', async () => {
      const problems = await problemsOf(valid.replace('parallelism: 3', 'parallelism: 0').replace('command: npm test', 'comand: npm test'));
      expect(problems).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ line: 7, column: 7, path: 'spec.stages[0].command', message: expect.stringContaining('"command" is missing') }),
          expect.objectContaining({ line: 8, column: 7, path: 'spec.stages[0].comand', message: expect.stringContaining('did you mean "command"') }),
          expect.objectContaining({ line: 10, column: 20, path: 'spec.stages[0].parallelism' }),
        ]),
      );
    });

    it('says the message with file:line:col in the error', async () => {
      await expect(parsePipeline('kind: Pipeline\n', '.slipway/pipeline.yaml')).rejects.toThrow(/\.slipway\/pipeline\.yaml:1:1/);
    });
  });

  describe('when a condition does not parse', () => {
    it('points at the column inside the condition', async () => {
      const [problem] = await problemsOf(valid.replace('condition: branch == main', 'condition: branch = main'));
      expect(problem).toMatchObject({ line: 11, column: 25, path: 'spec.stages[0].condition', message: expect.stringContaining('expected ==, !=, =~ or !~') });
    });
  });

  describe('when the image context escapes the repository', () => {
    it.each([['../outside'], ['/abs/dist']])('refuses %s', async (context) => {
      const [problem] = await problemsOf(valid.replace('context: dist', `context: ${context}`));
      expect(problem).toMatchObject({ line: 17, path: 'spec.image.context', message: expect.stringContaining('inside the repository') });
    });
  });
});
