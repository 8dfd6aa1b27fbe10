import type { AuditEvent, ProcessInfo } from '../../../src/audit/event';

/** A hand-built AuditEvent with sane defaults; `process` fields merge over a plain root process. */
export function makeEvent(over: Omit<Partial<AuditEvent>, 'process'> & { process?: Partial<ProcessInfo> | null } = {}): AuditEvent {
  const { process, ...rest } = over;
  const base: ProcessInfo = {
    pid: 100, ppid: 1, uid: 0, euid: 0, gid: 0, egid: 0, auid: null, ses: null, tty: null,
    comm: 'x', exe: '/usr/bin/x', cwd: '/', argv: null, title: null,
  };
  return {
    id: '1700000000.000:1', time: '2023-11-14T22:13:20.000Z', timeMs: 1_700_000_000_000, serial: 1,
    node: null, types: ['SYSCALL'], incomplete: false,
    syscall: { arch: 'x86_64', nr: 59, name: 'execve', success: true, exit: 0 },
    process: process === null ? null : { ...base, ...process },
    paths: [], sockaddr: null, key: null, records: [],
    ...rest,
  };
}
