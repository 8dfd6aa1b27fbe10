/**
 * The typed audit event: what the reassembler hands to enrichment and detection, and what
 * `credwatch replay --events` prints (one JSON object per line). Field names are part of the CLI's
 * contract, so they are snake_case-free and stable.
 *
 * Strings that came from the kernel may hold bytes that are not valid UTF-8. They are decoded with
 * the "surrogateescape" convention (see src/audit/bytes.ts): each invalid byte 0xNN becomes the lone
 * surrogate U+DCNN, which JSON.stringify writes as "\udcNN". Nothing is lost and it round-trips.
 */

/** One raw record as read from netlink or a log line, before field parsing. */
import type { ArgvCut } from './argv-bound';

export interface RawRecord {
  /** Numeric record type (1300 SYSCALL, 1309 EXECVE, ...). */
  type: number;
  /** The record text as the kernel sends it: `audit(SEC.MS:SERIAL): k=v ...` (auditd adds `type=` and `node=`). */
  text: string;
}

export type SockaddrFamily = 'unix' | 'inet' | 'inet6' | 'netlink' | number;

export interface Sockaddr {
  family: SockaddrFamily;
  /** AF_UNIX path; abstract names start with "@" (the leading NUL shown as @, as ss(8) does). */
  path: string | null;
  addr: string | null;
  port: number | null;
  /** AF_NETLINK only: nl_pid and nl_groups (added by the parser helper; absent for other families). */
  pid?: number;
  groups?: number;
}

export interface SyscallInfo {
  /** "x86_64", "i386", ... or the raw hex when unknown. */
  arch: string | null;
  nr: number | null;
  name: string | null;
  success: boolean | null;
  exit: number | null;
}

export interface ProcessInfo {
  pid: number | null;
  ppid: number | null;
  uid: number | null;
  euid: number | null;
  gid: number | null;
  egid: number | null;
  /** 4294967295 (unset) is reported as null. */
  auid: number | null;
  ses: number | null;
  /** "(none)" is reported as null. */
  tty: string | null;
  comm: string | null;
  exe: string | null;
  cwd: string | null;
  /**
   * argv from EXECVE records (null when the event has no EXECVE): exact, or bounded where the event
   * was built for the pipeline and an argument was too long (then `argvCut` says what was cut).
   */
  argv: string[] | null;
  /** Present only when `argv` was cut (src/audit/argv-bound.ts): the exact lengths and what was cut. */
  argvCut?: ArgvCut;
  /** Decoded PROCTITLE (NULs become spaces; the kernel cuts it at 128 bytes). */
  title: string | null;
}

export interface PathInfo {
  name: string | null;
  nametype: string | null;
  inode: number | null;
  mode: string | null;
  /**
   * The device of the inode, `MAJOR:MINOR` in hex as the kernel prints it (`dev=00:2a`). With
   * `inode` it names the object whatever path was used to reach it (src/enrich/watched-objects.ts).
   * Absent when the record has none.
   */
  dev?: string;
}

/**
 * An io_uring operation (URINGOP record, type 1336): the kernel audits each submitted op it does not
 * skip through its io_uring filter list. Inline completions arrive with the io_uring_enter SYSCALL
 * record of the submitting task; ops run by an io-wq worker arrive alone (no SYSCALL, no exe).
 */
export interface UringInfo {
  /** IORING_OP_* number (`uring_op=`). */
  op: number | null;
  /** src/audit/uring-ops.ts name (openat, connect, ...); null when the number is unknown. */
  name: string | null;
  success: boolean | null;
  exit: number | null;
}

export interface AuditEvent {
  /** "SEC.MS:SERIAL", e.g. "1700000000.123:4567". */
  id: string;
  /** ISO 8601 from the audit timestamp. */
  time: string;
  /** Milliseconds since the epoch from the audit timestamp. */
  timeMs: number;
  serial: number;
  node: string | null;
  /** Record type names in arrival order, e.g. ["SYSCALL","EXECVE","CWD","PATH","PROCTITLE","EOE"]. */
  types: string[];
  /** True when the event was emitted because it timed out or was evicted before its EOE. */
  incomplete: boolean;
  syscall: SyscallInfo | null;
  process: ProcessInfo | null;
  paths: PathInfo[];
  sockaddr: Sockaddr | null;
  /** Present when the event holds an io_uring operation (URINGOP); its last record's outcome. */
  uring?: UringInfo;
  /** The rule key (`key=`), null when "(null)". When several rules matched, the first key. */
  key: string | null;
  /** Present only when the kernel reported several keys (joined by \x01 in the record): all of them. */
  keys?: string[];
  /**
   * Present only when a record could not be decoded exactly, e.g. "argv: a3 length 16000 != 15999",
   * "sockaddr: malformed". The event is still emitted with what could be decoded.
   */
  problems?: string[];
  /** The raw records of the event (type name + original text), kept for evidence. */
  records: { type: string; text: string }[];
}
