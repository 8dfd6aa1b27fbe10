/**
 * What the rule parser, the wire codec and the formatter share: the mask and field limits of
 * `struct audit_rule_data`, the key separator, the syscall tables by machine, and mask helpers.
 */
import { AUDIT_ARCH_I386, AUDIT_ARCH_X86_64 } from '../syscall-names';
import { I386_SYSCALL_ALIASES, I386_SYSCALL_NAMES } from '../syscalls-i386';
import { X86_64_SYSCALL_ALIASES, X86_64_SYSCALL_NAMES } from '../syscalls-x86_64';
import { URING_OP_BY_NAME, URING_OP_NAMES } from '../uring-ops';
import type { Machine } from './types';

/** Words in the syscall mask; fields in a rule (AUDIT_BITMASK_SIZE, AUDIT_MAX_FIELDS). */
export const BITMASK_WORDS = 64;
export const MAX_FIELDS = 64;
/** auditctl joins a rule's keys with \x01 in one key field. */
export const KEY_SEPARATOR = '\x01';

export interface SyscallTable {
  readonly names: ReadonlyMap<number, string>;
  readonly byName: ReadonlyMap<string, number>;
}
function syscallTable(names: ReadonlyMap<number, string>, aliases: ReadonlyMap<string, number>): SyscallTable {
  const byName = new Map<string, number>(aliases);
  for (const [nr, name] of names) byName.set(name, nr);
  return { names, byName };
}
export const SYSCALLS: Readonly<Record<Machine, SyscallTable>> = {
  x86_64: syscallTable(X86_64_SYSCALL_NAMES, X86_64_SYSCALL_ALIASES),
  i386: syscallTable(I386_SYSCALL_NAMES, I386_SYSCALL_ALIASES),
};
export const URING_TABLE: SyscallTable = syscallTable(URING_OP_NAMES, URING_OP_BY_NAME);

export function machineOfElf(elf: number): Machine | undefined {
  if (elf === AUDIT_ARCH_X86_64) return 'x86_64';
  if (elf === AUDIT_ARCH_I386) return 'i386';
  return undefined;
}

/** Wraps a C long into the u32 the kernel stores (so -1 becomes 4294967295). */
export function toU32(n: number): number | undefined {
  if (!Number.isSafeInteger(n) || n < -0x80000000 || n > 0xffffffff) return undefined;
  return n >>> 0;
}

/** auditctl's own test for "all": every word but the last (whose top bits the kernel clears) is full. */
export function isAllSyscalls(mask: Uint32Array): boolean {
  for (let w = 0; w < BITMASK_WORDS - 1; w++) if (mask[w] !== 0xffffffff) return false;
  return true;
}

export function maskToSyscalls(mask: Uint32Array): number[] {
  const out: number[] = [];
  for (let w = 0; w < BITMASK_WORDS; w++) {
    const word = mask[w] as number;
    if (word === 0) continue;
    for (let b = 0; b < 32; b++) if (word & (1 << b)) out.push(w * 32 + b);
  }
  return out;
}
