/**
 * Audit record type numbers and names, from the one generated table (record-type-table.ts, made by
 * scripts/gen-audit-tables.js from the kernel and libaudit headers): names as auditd writes them.
 */
import { AUDIT_MESSAGE_TYPES } from './record-type-table';

const TYPES = AUDIT_MESSAGE_TYPES;

const NAME_BY_NUMBER = new Map<number, string>();
const NUMBER_BY_NAME = new Map<string, number>();
for (const [name, num] of TYPES) {
  if (!NAME_BY_NUMBER.has(num)) NAME_BY_NUMBER.set(num, name);
  NUMBER_BY_NAME.set(name, num);
}

export const AUDIT_SYSCALL = 1300;
export const AUDIT_PATH = 1302;
export const AUDIT_SOCKADDR = 1306;
export const AUDIT_CWD = 1307;
export const AUDIT_EXECVE = 1309;
export const AUDIT_CONFIG_CHANGE = 1305;
export const AUDIT_EOE = 1320;
export const AUDIT_PROCTITLE = 1327;
export const AUDIT_URINGOP = 1336;

/** Name for a type number; auditd's own spelling `UNKNOWN[n]` for numbers it does not know. */
export function recordTypeName(type: number): string {
  return NAME_BY_NUMBER.get(type) ?? `UNKNOWN[${type}]`;
}

/** Number for a name as auditd writes it (`SYSCALL`, `UNKNOWN[1327]`); undefined when unknown. */
export function recordTypeNumber(name: string): number | undefined {
  const known = NUMBER_BY_NAME.get(name);
  if (known !== undefined) return known;
  if (name.startsWith('UNKNOWN[') && name.endsWith(']')) {
    const n = Number(name.slice(8, -1));
    if (Number.isInteger(n) && n > 0) return n;
  }
  return undefined;
}
