import { recordVerdict, startAnalysisRun, verdictOf, type AnalysisDecision, type AnalysisRun, type Outcome } from '../../../controller/analysis/index.js';

function verdict(outcome: Outcome) {
  return verdictOf([{ slo: 'errorRate', outcome, summary: `${outcome} interval`, numbers: {} }], '2026-01-01T00:00:00Z');
}

function play(outcomes: Outcome[], limits = { failureLimit: 2, inconclusiveLimit: 3, count: 4 }): { run: AnalysisRun; decisions: AnalysisDecision['kind'][] } {
  let run = startAnalysisRun();
  const decisions: AnalysisDecision['kind'][] = [];
  for (const o of outcomes) {
    const r = recordVerdict(run, verdict(o), limits);
    run = r.run;
    decisions.push(r.decision.kind);
  }
  return { run, decisions };
}

describe('an analysis run across intervals', () => {
  it.each<[string, Outcome[], AnalysisDecision['kind'], AnalysisRun['phase']]>([
    ['passes after count passing intervals', ['pass', 'pass', 'pass', 'pass'], 'passed', 'passed'],
    ['breaches on failureLimit consecutive fails', ['pass', 'fail', 'fail'], 'breach', 'breached'],
    ['does not breach on fails separated by a pass', ['fail', 'pass', 'fail', 'pass'], 'continue', 'running'],
    ['does not let an inconclusive interval clear a failure streak', ['fail', 'inconclusive', 'fail'], 'breach', 'breached'],
    ['holds after inconclusiveLimit inconclusive intervals', ['inconclusive', 'inconclusive', 'inconclusive'], 'hold', 'holding'],
    ['never passes on inconclusive intervals alone', Array<Outcome>(10).fill('inconclusive'), 'hold', 'holding'],
    ['resumes when data returns after a hold', ['inconclusive', 'inconclusive', 'inconclusive', 'pass'], 'continue', 'running'],
  ])('%s', (_name, outcomes, lastDecision, phase) => {
    const { run, decisions } = play(outcomes);
    expect(decisions[decisions.length - 1]).toBe(lastDecision);
    expect(run.phase).toBe(phase);
  });

  it('says why it breached, with the failing interval', () => {
    let run = startAnalysisRun();
    const limits = { failureLimit: 1, inconclusiveLimit: 3, count: 3 };
    const r = recordVerdict(run, verdict('fail'), limits);
    run = r.run;
    expect(r.decision).toMatchObject({ kind: 'breach', reason: expect.stringMatching(/1 consecutive failed analysis intervals: fail: errorRate: fail interval/) });
    // A finished run repeats its decision rather than moving on.
    expect(recordVerdict(run, verdict('pass'), limits).decision.kind).toBe('breach');
  });
});
