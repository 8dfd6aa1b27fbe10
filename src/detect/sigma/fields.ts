/**
 * Which Sigma logsources credwatch can feed, and which fields each may name.
 *   auditd            the raw audit record fields (type, SYSCALL, exe, comm, a0..aN, name, key, ...)
 *   process_creation  an EXECVE event as Image, CommandLine, ParentImage, User, CurrentDirectory ...
 *   kube_audit        the API-server audit event by dotted path (verb, objectRef.resource, user.username ...)
 */
export type SigmaTarget = 'auditd' | 'process_creation' | 'kube_audit';

export function sigmaTarget(ls: Record<string, unknown>): SigmaTarget | null {
  const { product, service, category } = ls;
  if (product === 'linux' && service === 'auditd' && category === undefined) return 'auditd';
  if (product === 'linux' && category === 'process_creation' && service === undefined) return 'process_creation';
  // SigmaHQ files its API-server rules under the generic category "application".
  if (product === 'kubernetes' && service === 'audit' && (category === undefined || category === 'application')) return 'kube_audit';
  return null;
}

export const PROCESS_CREATION_FIELDS = new Set(['Image', 'CommandLine', 'ParentImage', 'ParentCommandLine', 'User', 'CurrentDirectory', 'ProcessId', 'ParentProcessId', 'LogonId']);

const KUBE_FIELDS = /^(verb|userAgent|requestURI|sourceIPs|responseStatus\.code|stage|level|auditID|objectRef\.(resource|subresource|namespace|name|apiGroup|apiVersion)|user\.(username|groups|uid)|impersonatedUser\.(username|groups))$/;

export function fieldAllowed(target: SigmaTarget, field: string): boolean {
  if (target === 'process_creation') return PROCESS_CREATION_FIELDS.has(field);
  if (target === 'kube_audit') return KUBE_FIELDS.test(field);
  // Audit record fields: lower-case keys plus the SYSCALL name (Sigma's name for the syscall field).
  return field === 'SYSCALL' || /^[a-z][a-z0-9_]*$/.test(field);
}

/** Fields whose values are integers in every event: a plain value that is not one can never match. */
const NUMERIC_FIELDS = new Set(['responseStatus.code', 'ProcessId', 'ParentProcessId', 'LogonId']);

/** Why a plain (modifier-free) value can never match this field, or null. */
export function impossibleValue(field: string, modifiers: readonly string[], values: readonly unknown[]): string | null {
  if (!NUMERIC_FIELDS.has(field) || modifiers.length > 0) return null;
  const bad = values.find((v) => v !== null && !/^-?\d+$/.test(String(v)));
  return bad === undefined ? null : `${field} is a number in every event: ${JSON.stringify(bad)} can never match`;
}
