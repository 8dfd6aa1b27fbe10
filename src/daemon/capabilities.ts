/**
 * Least privilege for `credwatch run`: once the daemon has what it needs open, it keeps only the
 * capabilities the rest of its life requires. The same set as systemd/credwatch.service's
 * CapabilityBoundingSet, so running by hand is as confined as running under systemd:
 *  - CAP_AUDIT_CONTROL: every control call (status, rules, AUDIT_SET pid) opens a fresh netlink socket;
 *    rules are removed at exit and re-added on reload, so it is needed until the end;
 *  - CAP_AUDIT_READ: the multicast reader, also when auto mode switches to it later (auditd starts);
 *  - CAP_SYS_PTRACE: /proc/<pid>/exe, cwd and environ of other users' processes (enrichment).
 * Everything else goes, from the effective, permitted and bounding sets of every thread, with
 * no_new_privs so nothing it executes can gain privileges back. The state directory is root's, so
 * root needs no CAP_DAC_OVERRIDE to write it.
 */
import { loadNative } from '../native/binding';

/** Linux capability numbers (include/uapi/linux/capability.h) for the names used here. */
export const CAPABILITY_NUMBERS: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_RESOURCE: 24,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_AUDIT_READ: 37,
};

export const DAEMON_CAPABILITIES: readonly string[] = ['CAP_AUDIT_CONTROL', 'CAP_AUDIT_READ', 'CAP_SYS_PTRACE'];

export interface CapabilityDrop {
  /** Threads that applied the drop (the caller included). */
  threads: number;
  /** Threads that did not answer (exited meanwhile); they are gone or still privileged. */
  threadsMissed: number;
}

/** Keeps only `keep` (capability names); throws a clear error for an unknown name or a refused capset. */
export function dropCapabilities(keep: readonly string[] = DAEMON_CAPABILITIES): CapabilityDrop {
  const numbers = keep.map((name) => {
    const n = CAPABILITY_NUMBERS[name];
    if (n === undefined) throw new RangeError(`dropCapabilities: unknown capability ${name}`);
    return n;
  });
  const native = loadNative();
  if (native.dropCapabilities === undefined) throw new Error('dropCapabilities: the native addon is too old; rebuild it');
  return native.dropCapabilities(numbers);
}

export interface ProcessCapabilities {
  inheritable: bigint;
  permitted: bigint;
  effective: bigint;
  bounding: bigint;
  ambient: bigint;
  noNewPrivs: boolean;
}

/** Parses the Cap* lines and NoNewPrivs of a /proc/<pid>/status (or /proc/<pid>/task/<tid>/status) text. */
export function parseProcStatusCapabilities(status: string): ProcessCapabilities {
  const hex = (key: string): bigint => {
    const m = new RegExp(`^${key}:\\s*([0-9a-f]+)$`, 'm').exec(status);
    return m ? BigInt(`0x${m[1] as string}`) : 0n;
  };
  return {
    inheritable: hex('CapInh'),
    permitted: hex('CapPrm'),
    effective: hex('CapEff'),
    bounding: hex('CapBnd'),
    ambient: hex('CapAmb'),
    noNewPrivs: /^NoNewPrivs:\s*1$/m.test(status),
  };
}

/** The bit mask of a list of capability names. */
export function capabilityMask(names: readonly string[]): bigint {
  let m = 0n;
  for (const name of names) {
    const n = CAPABILITY_NUMBERS[name];
    if (n === undefined) throw new RangeError(`unknown capability ${name}`);
    m |= 1n << BigInt(n);
  }
  return m;
}
