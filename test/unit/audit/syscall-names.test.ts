import { describe, expect, it } from 'vitest';
import { archName, syscallName } from '../../../src/audit/syscall-names';

describe('syscall and arch names', () => {
  it('names x86_64 and i386 syscalls as auditctl/ausearch do', () => {
    expect(syscallName('x86_64', 59)).toBe('execve');
    expect(syscallName('x86_64', 42)).toBe('connect');
    expect(syscallName('x86_64', 257)).toBe('openat');
    expect(syscallName('x86_64', 17)).toBe('pread'); // libaudit's spelling, not the header's pread64
    expect(syscallName('i386', 11)).toBe('execve');
    expect(syscallName('i386', 102)).toBe('socketcall');
  });
  it('returns null for unknown numbers and architectures without a table', () => {
    expect(syscallName('x86_64', 99999)).toBeNull();
    expect(syscallName('aarch64', 221)).toBeNull();
    expect(syscallName(null, 1)).toBeNull();
  });
  it('maps AUDIT_ARCH hex to names, unknown hex kept as is', () => {
    expect(archName('c000003e')).toBe('x86_64');
    expect(archName('C000003E')).toBe('x86_64');
    expect(archName('40000003')).toBe('i386');
    expect(archName('c00000b7')).toBe('aarch64');
    expect(archName('deadbeef')).toBe('deadbeef');
  });
});
