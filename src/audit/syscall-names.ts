/**
 * Syscall number -> name for events, and AUDIT_ARCH -> architecture name. The tables are the ones
 * the rule encoder uses (src/audit/syscalls-*.ts: libaudit's spelling, e.g. `pread` for 17), so an
 * event says `syscall.name` exactly as `auditctl -S` and `ausearch -i` do. Architectures other than
 * x86_64 and its i386 compat ABI get a null name (the number is always there).
 */
import { I386_SYSCALL_NAMES } from './syscalls-i386';
import { X86_64_SYSCALL_NAMES } from './syscalls-x86_64';

/** The two ABIs credwatch's audit rules cover (AUDIT_ARCH_* in linux/audit.h). */
export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;

/** AUDIT_ARCH_* values (linux/audit.h) as the SYSCALL record prints them in hex, lower case. */
const ARCH_NAMES: ReadonlyMap<string, string> = new Map([
  ['c000003e', 'x86_64'],
  ['40000003', 'i386'],
  ['c00000b7', 'aarch64'],
  ['40000028', 'arm'],
  ['80000015', 'ppc64'],
  ['c0000015', 'ppc64le'],
  ['80000016', 's390x'],
  ['00000016', 's390'],
  ['16', 's390'],
  ['c00000f3', 'riscv64'],
  ['40000008', 'mipsel'],
  ['00000008', 'mips'],
  ['c0000008', 'mips64el'],
  ['80000008', 'mips64'],
  ['c0000102', 'loongarch64'],
]);

/** Architecture name from the SYSCALL record's `arch=` hex; the raw hex when unknown. */
export function archName(archHex: string): string {
  return ARCH_NAMES.get(archHex.toLowerCase()) ?? archHex;
}

const ARCH_HEX_BY_NAME = new Map([...ARCH_NAMES].map(([hex, name]) => [name, hex]));

/**
 * Byte order of an architecture (a name from archName, or the raw hex): the kernel's AUDIT_ARCH_*
 * value carries __AUDIT_ARCH_LE (0x40000000) for little-endian ones. null when unknown.
 */
export function archByteOrder(arch: string | null): 'le' | 'be' | null {
  if (arch === null) return null;
  const hex = ARCH_HEX_BY_NAME.get(arch) ?? (/^[0-9a-f]{1,8}$/i.test(arch) ? arch : null);
  if (hex === null) return null;
  return (parseInt(hex, 16) & 0x40000000) !== 0 ? 'le' : 'be';
}

/** Syscall name for an architecture name and number; null when unknown. */
export function syscallName(arch: string | null, nr: number): string | null {
  const table = arch === 'x86_64' ? X86_64_SYSCALL_NAMES : arch === 'i386' ? I386_SYSCALL_NAMES : null;
  return table?.get(nr) ?? null;
}
