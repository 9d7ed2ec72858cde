/**
 * Errors say what should happen next, and carry a stable code the CLI, the API and the logs show.
 * - `stalling`: a person must act (bad input, refused policy); retrying will not help.
 * - `waiting`: retry later (a freeze window, a registry that is down, a moved branch).
 * - `generic`: anything else.
 */
export type ErrorKind = 'stalling' | 'waiting' | 'generic';

export class SlipwayError extends Error {
  override readonly name: string = 'SlipwayError';
  constructor(
    readonly code: string,
    message: string,
    readonly kind: ErrorKind = 'generic',
    readonly data: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, kind: this.kind, message: this.message, ...this.data };
  }
}

export function isSlipwayError(err: unknown): err is SlipwayError {
  return err instanceof SlipwayError;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
