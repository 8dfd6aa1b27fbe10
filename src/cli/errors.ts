/**
 * Exit codes are part of the CLI contract (README): 0 ok, 1 runtime failure, 2 usage or
 * configuration error. Commands throw these; main.ts maps them to the exit code and one clear line.
 */
export class UsageError extends Error {
  readonly exitCode = 2;
}

export class RuntimeFailure extends Error {
  readonly exitCode = 1;
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError || err instanceof RuntimeFailure) return err.exitCode;
  if (err && typeof err === 'object' && 'exitCode' in err && typeof err.exitCode === 'number') return err.exitCode;
  return 1;
}
