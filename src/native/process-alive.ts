/**
 * Whether a pid names a live process, and its name: what both the audit reader (src/sources/netlink.ts,
 * taking over a dead daemon's registration) and the audit lifecycle (src/daemon/audit-lifecycle.ts,
 * choosing the read mode) ask about the process holding the audit pid. It sits at the native
 * boundary, below both, so neither imports the other.
 */
import { readFileSync } from 'node:fs';

/** True when `pid` names a live (not zombie) process: a zombie audit daemon holds nothing. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The process's comm, or "?" when it is gone or unreadable (for error messages only). */
export function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}
