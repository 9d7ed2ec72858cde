/**
 * Stage conditions: `branch == main`, `branch != main`, `branch =~ ^release/`, combined with `&&`,
 * `||`, `!` and parentheses. Values may be bare words or quoted strings. Pure: parse once (errors say
 * where), evaluate against the build's facts.
 */

export interface ConditionFacts {
  /** The branch being built; undefined for a detached commit (then `branch == x` is false). */
  branch?: string;
  /** Full commit sha. */
  commit?: string;
}

export const CONDITION_VARIABLES = ['branch', 'commit'] as const;
type Variable = (typeof CONDITION_VARIABLES)[number];

export type Condition =
  | { kind: 'compare'; variable: Variable; op: '==' | '!='; value: string }
  | { kind: 'match'; variable: Variable; op: '=~' | '!~'; pattern: RegExp }
  | { kind: 'not'; operand: Condition }
  | { kind: 'and' | 'or'; left: Condition; right: Condition };

export class ConditionSyntaxError extends Error {
  constructor(
    message: string,
    /** 0-based offset in the condition text. */
    readonly offset: number,
  ) {
    super(message);
  }
}

interface Token {
  type: 'word' | 'string' | 'op' | '(' | ')' | 'end';
  text: string;
  offset: number;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (['==', '!=', '=~', '!~', '&&', '||'].includes(two)) {
      tokens.push({ type: 'op', text: two, offset: i });
      i += 2;
    } else if (c === '!' || c === '=') {
      tokens.push({ type: 'op', text: c, offset: i });
      i++;
    } else if (c === '(' || c === ')') {
      tokens.push({ type: c, text: c, offset: i });
      i++;
    } else if (c === '"' || c === "'") {
      const end = text.indexOf(c, i + 1);
      if (end < 0) throw new ConditionSyntaxError(`unterminated string starting at column ${i + 1}`, i);
      tokens.push({ type: 'string', text: text.slice(i + 1, end), offset: i });
      i = end + 1;
    } else {
      const m = /^[^\s()!=&|"']+/.exec(text.slice(i));
      if (!m) throw new ConditionSyntaxError(`unexpected character ${JSON.stringify(c)} at column ${i + 1}`, i);
      tokens.push({ type: 'word', text: m[0], offset: i });
      i += m[0].length;
    }
  }
  tokens.push({ type: 'end', text: '', offset: text.length });
  return tokens;
}

export function parseCondition(text: string): Condition {
  const tokens = tokenize(text);
  let pos = 0;
  const peek = () => tokens[pos]!;
  const next = () => tokens[pos++]!;

  const orExpr = (): Condition => {
    let left = andExpr();
    while (peek().text === '||') {
      next();
      left = { kind: 'or', left, right: andExpr() };
    }
    return left;
  };
  const andExpr = (): Condition => {
    let left = unary();
    while (peek().text === '&&') {
      next();
      left = { kind: 'and', left, right: unary() };
    }
    return left;
  };
  const unary = (): Condition => {
    const t = peek();
    if (t.type === 'op' && t.text === '!') {
      next();
      return { kind: 'not', operand: unary() };
    }
    if (t.type === '(') {
      next();
      const inner = orExpr();
      const close = next();
      if (close.type !== ')') throw new ConditionSyntaxError(`expected ")" at column ${close.offset + 1}`, close.offset);
      return inner;
    }
    return comparison();
  };
  const comparison = (): Condition => {
    const v = next();
    if (v.type !== 'word' || !(CONDITION_VARIABLES as readonly string[]).includes(v.text)) {
      throw new ConditionSyntaxError(
        `expected a variable (${CONDITION_VARIABLES.join(', ')}) at column ${v.offset + 1}, got ${v.type === 'end' ? 'the end' : JSON.stringify(v.text)}`,
        v.offset,
      );
    }
    const op = next();
    if (op.type !== 'op' || !['==', '!=', '=~', '!~'].includes(op.text)) {
      const hint = op.text === '=' ? ' (use == to compare)' : '';
      throw new ConditionSyntaxError(`expected ==, !=, =~ or !~ after "${v.text}" at column ${op.offset + 1}${hint}`, op.offset);
    }
    const value = next();
    if (value.type !== 'word' && value.type !== 'string') {
      throw new ConditionSyntaxError(`expected a value after "${op.text}" at column ${value.offset + 1}`, value.offset);
    }
    const variable = v.text as Variable;
    if (op.text === '=~' || op.text === '!~') {
      let pattern: RegExp;
      try {
        pattern = new RegExp(value.text);
      } catch (err) {
        throw new ConditionSyntaxError(`invalid regular expression ${JSON.stringify(value.text)}: ${(err as Error).message}`, value.offset);
      }
      return { kind: 'match', variable, op: op.text, pattern };
    }
    return { kind: 'compare', variable, op: op.text as '==' | '!=', value: value.text };
  };

  const result = orExpr();
  const rest = peek();
  if (rest.type !== 'end') throw new ConditionSyntaxError(`unexpected ${JSON.stringify(rest.text)} at column ${rest.offset + 1}; join conditions with && or ||`, rest.offset);
  return result;
}

export function evaluateCondition(condition: Condition, facts: ConditionFacts): boolean {
  switch (condition.kind) {
    case 'compare': {
      const actual = facts[condition.variable];
      return condition.op === '==' ? actual === condition.value : actual !== condition.value;
    }
    case 'match': {
      const actual = facts[condition.variable];
      const matched = actual !== undefined && condition.pattern.test(actual);
      return condition.op === '=~' ? matched : !matched;
    }
    case 'not':
      return !evaluateCondition(condition.operand, facts);
    case 'and':
      return evaluateCondition(condition.left, facts) && evaluateCondition(condition.right, facts);
    case 'or':
      return evaluateCondition(condition.left, facts) || evaluateCondition(condition.right, facts);
  }
}
