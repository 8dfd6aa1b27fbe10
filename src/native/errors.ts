import { constants } from 'node:os';

/** errno number -> symbolic name ("EEXIST"), from Node's own table for this platform. */
const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name] as [number, string]),
);

/**
 * A failed system call or kernel audit request. The native addon constructs this class (the loader
 * hands it over at init), so every failure keeps its `syscall` and numeric `errno`; `code` is the
 * symbolic name callers branch on (`EEXIST` when another audit daemon holds the pid, `EPERM` without
 * CAP_AUDIT_CONTROL, `ETIMEDOUT` when the kernel did not answer).
 *
 * `syscall` is either a system call ("socket", "bind", "sendto", "recvfrom") or the audit request the
 * kernel refused ("AUDIT_SET", "AUDIT_ADD_RULE", "AUDIT_DEL_RULE", "AUDIT_LIST_RULES", "AUDIT_GET").
 */
export class AuditError extends Error {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;

  constructor(message: string, syscall: string, errno: number) {
    super(message);
    this.name = 'AuditError';
    this.syscall = syscall;
    this.errno = errno;
    this.code = errnoNames.get(errno) ?? `E${errno}`;
  }
}

export function isAuditError(err: unknown, code?: string): err is AuditError {
  return err instanceof AuditError && (code === undefined || err.code === code);
}
