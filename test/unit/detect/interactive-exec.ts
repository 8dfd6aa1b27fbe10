/** An execve of /usr/bin/ARGV0 by a person at a terminal (auid 1000, pts0) on the host, at `timeMs`. */
import * as path from 'node:path';
import type { AuditEvent } from '../../../src/audit/event';
import { makeEvent } from '../enrich/helpers';

export function interactiveExec(argv: string[], serial: number, pid: number, timeMs: number): AuditEvent {
  const exe = `/usr/bin/${argv[0]}`;
  return makeEvent({
    id: `${(timeMs / 1000).toFixed(3)}:${serial}`,
    time: new Date(timeMs).toISOString(),
    timeMs,
    serial,
    syscall: { arch: 'x86_64', nr: 59, name: 'execve', success: true, exit: 0 },
    process: { pid, ppid: 1, argv, exe, comm: path.basename(exe), cwd: '/root', auid: 1000, tty: 'pts0' },
    records: [{ type: 'EXECVE', text: `audit(1.0:1): argc=${argv.length}` }],
  });
}
