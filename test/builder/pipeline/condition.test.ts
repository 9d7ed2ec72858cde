import { evaluateCondition, parseCondition, ConditionSyntaxError } from '../../../builder/pipeline/index.js';

describe('stage conditions', () => {
  describe('when evaluated against the branch being built', () => {
    it.each([
      ['branch == main', 'main', true],
      ['branch == main', 'feature/x', false],
      ['branch == main', undefined, false],
      ['branch != main', 'feature/x', true],
      ['branch != main', undefined, true],
      ["branch == 'release/1.0'", 'release/1.0', true],
      ['branch =~ ^release/', 'release/2', true],
      ['branch =~ ^release/', 'main', false],
      ['branch !~ ^release/', 'main', true],
      ['branch == main || branch =~ ^release/', 'release/3', true],
      ['branch =~ ^release/ && branch != release/old', 'release/old', false],
      ['!(branch == main)', 'dev', true],
      ['(branch == a || branch == b) && branch != b', 'b', false],
    ])('%s on %s is %s', (text, branch, expected) => {
      expect(evaluateCondition(parseCondition(text), branch === undefined ? {} : { branch })).toBe(expected);
    });
  });

  describe('when the text is not a condition', () => {
    it.each([
      ['branch = main', 'expected ==, !=, =~ or !~', 7],
      ['tag == v1', 'expected a variable (branch, commit)', 0],
      ['branch == main branch == dev', 'join conditions with && or ||', 15],
      ['(branch == main', 'expected ")"', 15],
      ['branch =~ "(unclosed"', 'invalid regular expression', 10],
      ['branch ==', 'expected a value', 9],
    ])('%s is refused naming where', (text, message, offset) => {
      let error: unknown;
      try {
        parseCondition(text);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConditionSyntaxError);
      expect((error as ConditionSyntaxError).message).toContain(message);
      expect((error as ConditionSyntaxError).offset).toBe(offset);
    });
  });
});
