import * as nodeYaml from 'yaml';
import { isMap, isScalar, parse, parseDocument, yamlBuild } from '../../schemas/yaml.js';

describe('the yaml parser the validator uses', () => {
  it("is the yaml package's browser build, which reads no process.env per token", () => {
    expect(yamlBuild).toBe('browser');
  });

  it('parses like the Node build of the same package', () => {
    const text = 'a: 1\nb: [x, "y", 2.5, true, null]\nc:\n  d: |\n    text\n  e: &anchor { f: 0x10 }\n  g: *anchor\n';
    expect(parse(text)).toEqual(nodeYaml.parse(text));
    expect(parseDocument(text).toJS()).toEqual(nodeYaml.parseDocument(text).toJS());
    expect(parseDocument('a: 1\na: 2', { uniqueKeys: true }).errors.map((e) => [e.code, e.pos])).toEqual(
      nodeYaml.parseDocument('a: 1\na: 2', { uniqueKeys: true }).errors.map((e) => [e.code, e.pos]),
    );
  });

  it("shares node identity with the Node build (isMap, isScalar work across both)", () => {
    expect(nodeYaml.isMap(parseDocument('a: 1').contents)).toBe(true);
    expect(isMap(nodeYaml.parseDocument('a: 1').contents)).toBe(true);
    expect(isScalar(nodeYaml.parseDocument('1').contents)).toBe(true);
  });
});
