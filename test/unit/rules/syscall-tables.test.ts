/**
 * The checked-in syscall tables (src/audit/syscalls-*.ts) were generated once from the kernel headers;
 * this re-derives them from the headers where linux-libc-dev is installed and checks nothing drifted,
 * and checks the few names libaudit (and so auditctl) spells differently.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { I386_SYSCALL_ALIASES, I386_SYSCALL_NAMES } from '../../../src/audit/syscalls-i386';
import { X86_64_SYSCALL_ALIASES, X86_64_SYSCALL_NAMES } from '../../../src/audit/syscalls-x86_64';

const HEADERS = '/usr/include/x86_64-linux-gnu/asm';

function fromHeader(file: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of readFileSync(`${HEADERS}/${file}`, 'utf8').matchAll(/^#define __NR_(\w+)\s+(\d+)\s*$/gm)) {
    out.set(Number(m[2]), m[1] as string);
  }
  return out;
}

/** Our table in header spelling: libaudit's names with the header's alias put back. */
function headerSpelling(names: ReadonlyMap<number, string>, aliases: ReadonlyMap<string, number>): Map<number, string> {
  const out = new Map(names);
  for (const [alias, nr] of aliases) out.set(nr, alias);
  return out;
}

const haveHeaders = existsSync(`${HEADERS}/unistd_64.h`) && existsSync(`${HEADERS}/unistd_32.h`);
if (!haveHeaders) console.warn(`[syscall tables] header comparison skipped: ${HEADERS}/unistd_{64,32}.h missing (apt package linux-libc-dev)`);

describe('syscall tables', () => {
  it.skipIf(!haveHeaders)('x86_64 table equals unistd_64.h (header spelling)', () => {
    expect(headerSpelling(X86_64_SYSCALL_NAMES, X86_64_SYSCALL_ALIASES)).toEqual(fromHeader('unistd_64.h'));
  });

  it.skipIf(!haveHeaders)('i386 table equals unistd_32.h (header spelling)', () => {
    expect(headerSpelling(I386_SYSCALL_NAMES, I386_SYSCALL_ALIASES)).toEqual(fromHeader('unistd_32.h'));
  });

  it('keeps libaudit spellings for printing, where auditctl differs from the headers', () => {
    expect(X86_64_SYSCALL_NAMES.get(17)).toBe('pread');
    expect(X86_64_SYSCALL_NAMES.get(18)).toBe('pwrite');
    expect(I386_SYSCALL_NAMES.get(283)).toBe('sys_kexec_load');
    expect(I386_SYSCALL_NAMES.get(423)).toBe('sched_rr_get_interval64');
  });

  it('has the syscalls credwatch rules name on both arches', () => {
    const x64 = new Map([...X86_64_SYSCALL_NAMES].map(([n, s]) => [s, n]));
    const x32 = new Map([...I386_SYSCALL_NAMES].map(([n, s]) => [s, n]));
    expect([x64.get('open'), x64.get('openat'), x64.get('openat2'), x64.get('execve'), x64.get('connect')]).toEqual([2, 257, 437, 59, 42]);
    expect([x32.get('open'), x32.get('openat'), x32.get('openat2'), x32.get('execve'), x32.get('connect'), x32.get('socketcall')]).toEqual([
      5, 295, 437, 11, 362, 102,
    ]);
    expect(x64.has('socketcall')).toBe(false);
  });
});
