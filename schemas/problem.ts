/** One problem in one file: where, which rule, and a sentence a person can act on. */
export interface Problem {
  /** Repo-relative path (or whatever name the caller gave the file). */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** Field path, dotted: `spec.image.digest`, `spec.strategy.canary.steps[2].setWeight`; empty for the whole file. */
  path: string;
  message: string;
  /** Stable name of the broken rule: a JSON Schema keyword (`pattern`, `required`, ...), `yaml`, `duplicate-key`, or a repo rule. */
  rule: string;
}

/** `production/services/web.yaml:7:11 spec.image.digest: must be a sha256 digest ...` */
export function formatProblem(p: Problem): string {
  const where = `${p.file}:${p.line}:${p.column}`;
  return p.path ? `${where} ${p.path}: ${p.message}` : `${where} ${p.message}`;
}

/** Stable order: by file, then position, then path. */
export function sortProblems(problems: Problem[]): Problem[] {
  return [...problems].sort(
    (a, b) =>
      a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column || a.path.localeCompare(b.path),
  );
}
