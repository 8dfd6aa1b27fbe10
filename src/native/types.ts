/**
 * The native addon's surface, exactly as native/addon.cc exports it. Only src/native/binding.ts
 * loads the addon; everything else uses the validated wrappers there.
 */

/** The kernel's audit status (struct audit_status). Older kernels leave later fields at 0. */
export interface AuditStatus {
  mask: number;
  /** 0 off, 1 on, 2 locked (immutable until reboot). */
  enabled: number;
  /** 0 silent, 1 printk, 2 panic. */
  failure: number;
  /** pid of the unicast audit daemon, 0 when none. */
  pid: number;
  rateLimit: number;
  backlogLimit: number;
  lost: number;
  backlog: number;
  featureBitmap: number;
  backlogWaitTime: number;
  backlogWaitTimeActual: number;
}

/**
 * Fields AUDIT_SET may change. `enabled` and `failure` accept only 0 or 1: credwatch never locks
 * the audit configuration (enabled=2) nor makes the kernel panic on audit failure (failure=2).
 */
export interface AuditStatusChange {
  enabled?: 0 | 1;
  failure?: 0 | 1;
  pid?: number;
  rateLimit?: number;
  backlogLimit?: number;
  backlogWaitTime?: number;
}

export type AuditSocketMode = 'unicast' | 'multicast';

/**
 * One record as it comes off the socket: netlink message type and the text after the header. Types
 * above 0xffff are the reader's own pseudo records (process notes, /proc snapshots):
 * src/native/process-note.ts.
 */
export interface NativeRecord {
  type: number;
  text: string;
}

/**
 * What the reader thread's triage needs to tell events no rule can fire on (native/triage.h); compiled
 * from the rule pack by src/detect/triage-spec.ts. Literals are lower-case; globs know only * and ?.
 */
export interface NativeTriageSpec {
  /** Which syscalls are exec and connect, per audit arch (AUDIT_ARCH_* value). Others always pass. */
  syscalls: { arch: number; nr: number; kind: 'exec' | 'connect' | 'open' }[];
  /** Globs (only * and ? special, '*' also crosses '/', case-sensitive) tested against basename(exe)
   *  and basename(argv[0]) of an exec event. */
  execPrograms: string[];
  /** Globs tested against the exe of an exec event: a glob containing '/' against the full exe path,
   *  otherwise against basename(exe). */
  execExes: string[];
  /** Lower-case strings; an exec event whose command line (argv joined by ' ', argv[0] reduced to its
   *  basename - exactly commandLine() in event-view.ts) contains one of them, compared ASCII
   *  case-insensitively, is interesting. */
  execArgvLiterals: string[];
  execAll: boolean;
  /** Same glob semantics as execExes, for connect events. */
  connectExes: string[];
  /** inet/inet6 destination ports: a connect to one is interesting. */
  connectPorts: number[];
  /** Lower-case; a unix-socket connect whose path (as sockaddr.ts formats it: '@' prefix for abstract)
   *  contains one (ASCII case-insensitive) is interesting. */
  connectUnixLiterals: string[];
  /** Every unix-socket connect is interesting (a predicate wants family unix with no path regex). */
  connectUnixAll: boolean;
  /** Lower-case; an inet (IPv4) connect whose dotted-quad address contains one is interesting. */
  connectInet4Literals: string[];
  /** Every inet connect is interesting. */
  connectInet4All: boolean;
  /** Every inet6 connect is interesting. */
  connectInet6All: boolean;
  connectAll: boolean;
  /**
   * Passed events whose records equal a recent passed event's (but for stamp and pid) go up as repeat
   * notes (native/repeat_cache.h, src/native/repeat-note.ts). Absent: off.
   */
  repeats?: boolean;
  /**
   * Replay only (the live reader is never given an open syscall): an open event whose every PATH name
   * is absolute, normalised and holds none of these lower-case literals (ASCII case-insensitive), and
   * whose audit key holds none of openObjectKeys, is boring. openAll: every open is interesting.
   */
  openPathLiterals?: string[];
  openObjectKeys?: string[];
  openAll?: boolean;
}

export interface AuditSocketOptions {
  /**
   * unicast: become the audit daemon (AUDIT_SET pid from the reading socket; EEXIST while another
   * daemon holds it). multicast: join AUDIT_NLGRP_READLOG (needs CAP_AUDIT_READ), coexists with auditd.
   */
  mode: AuditSocketMode;
  /** Batches that may wait for the JavaScript thread; beyond it records are dropped and counted. Default 64. */
  queueLimit?: number;
  /** A batch is sent when the socket has nothing more to read or it holds this many records. Default 256. */
  batchMaxRecords?: number;
  /**
   * What the reader does when queueLimit batches are waiting: 'drop' the batch (counted in queueDrops;
   * the default), or 'block' — stop reading until there is room, so records wait in the socket buffer
   * and the kernel backlog (unicast: the kernel then slows audited processes instead of losing).
   */
  overflow?: 'drop' | 'block';
  /** SO_RCVBUF(FORCE) for the reading socket in bytes. Default 4 MiB. */
  receiveBuffer?: number;
  /**
   * Read /proc/<pid>/stat (and cgroup for a new pid) on the reader thread as each SYSCALL record
   * arrives, and send it as a snapshot ahead of the records. Default false.
   */
  procSnapshots?: boolean;
  /** Called on the JavaScript thread with each batch. Must not throw (a throw goes to onError). */
  onBatch: (batch: NativeRecord[]) => void;
  /** Reader failures (an AuditError; the reader stops) and exceptions thrown by onBatch/onClosed. */
  onError?: (err: Error) => void;
  /** Called once after close(), when the last queued batch has been delivered. */
  onClosed?: () => void;
}

export interface AuditSocketCounters {
  /** Audit records read from the socket. */
  received: number;
  /** Their bytes, netlink header included. */
  bytes: number;
  /** Batches accepted into the queue to JavaScript. */
  batches: number;
  /** Records handed to onBatch. */
  delivered: number;
  /** Records dropped because the queue to JavaScript was full (JavaScript was not keeping up). */
  queueDrops: number;
  /** ENOBUFS from recv(): the kernel could not queue records for us (multicast overflow). */
  enobufs: number;
  /** Datagrams larger than the receive buffer (delivered cut) or shorter than a netlink header. */
  truncated: number;
  /** Datagrams from a sender other than the kernel (port id != 0), discarded. */
  badSender: number;
  /** Netlink control messages (acknowledgements) seen on the reading socket. */
  ignored: number;
  /** Batches waiting for the JavaScript thread right now (never more than queueLimit). */
  queued: number;
  /** Times the reader paused because the queue was full ('block' overflow): backpressure, not loss. */
  queueWaits: number;
  /** Events the triage replaced by a process note. */
  summarized: number;
  /** Records those notes stand for (included in delivered). */
  summarizedRecords: number;
  /** Exec/connect events passed on whole because a rule might fire on them. */
  triagePassed: number;
  /** Events passed on whole because their shape was not one the triage understands. */
  triageUnsure: number;
  /** Events passed on whole because their EOE did not come within the hold time. */
  triageExpired: number;
  /** /proc snapshots sent. */
  procSnapshots: number;
  /** Passed events sent as a repeat note of an earlier one (native/repeat_cache.h). */
  repeatNotes: number;
  /** Passed events announced as a template for later repeats. */
  repeatTemplates: number;
  /** Templates pushed out of the reader's cache by newer ones. */
  repeatEvictions: number;
  /** Passed events of a shape never collapsed (sent whole). */
  repeatSkipped: number;
}

export interface NativeAuditSocket {
  /** Opens and binds the socket (unicast: registers as audit daemon) and starts the reader thread. */
  start(): void;
  /** Stops the reader thread and closes the socket. Safe to call twice. Does not change kernel state. */
  close(): void;
  getCounters(): AuditSocketCounters;
  /** Keep the event loop alive while the reader runs (the default). */
  ref(): void;
  /** Let the process exit while the reader runs. */
  unref(): void;
  /** Netlink port id of the reading socket (0 before start). */
  portId(): number;
  /** The triage the reader applies from its next record on; null turns it off. Callable any time. */
  setTriage(spec: NativeTriageSpec | null): void;
}

/**
 * What the addon's constructor takes: onBatch gets a batch as parallel arrays (record i is
 * `{ type: types[i], text: texts[i] }`); createAuditSocket() turns them into NativeRecord[].
 */
export interface NativeAuditSocketOptions extends Omit<AuditSocketOptions, 'onBatch'> {
  onBatch: (types: Uint32Array, texts: string[]) => void;
}

export interface NativeAuditSocketConstructor {
  new (options: NativeAuditSocketOptions): NativeAuditSocket;
}

export interface NativeBinding {
  AuditSocket: NativeAuditSocketConstructor;
  setErrorClass(cls: new (message: string, syscall: string, errno: number) => Error): void;
  getStatus(): AuditStatus;
  setStatus(changes: AuditStatusChange): void;
  addRule(rule: Buffer): void;
  deleteRule(rule: Buffer): void;
  listRules(): Buffer[];
  sdNotify(socketPath: string, state: string): void;
  /** Test hook: the record-text decoder (ASCII fast path, UTF-8 with surrogateescape otherwise). */
  decodeRecordText(bytes: Buffer): string;
  /** Test hook: one native Triage run over the given records, with what it would send up. */
  triageRecords(
    spec: NativeTriageSpec,
    records: { type: number; text: string }[],
  ): {
    items: { type: number; text: string; count: number }[];
    stats: { summarized: number; passed: number; unsure: number; repeatNotes: number; repeatTemplates: number; repeatEvictions: number; repeatSkipped: number };
  };
  /**
   * Test hook: the reader thread's /proc snapshots (native/proc_snapshot.h) for the given SYSCALL record
   * texts against `procRoot`; `probe` fakes kill(pid, 0) (ESRCH for `gone`, EPERM for `denied`).
   */
  procSnapshots?(
    procRoot: string,
    syscallTexts: string[],
    probe?: { gone?: number[]; denied?: number[] },
  ): { snapshots: string[]; probed: number[]; skippedGone: number };
  /** `replay --events` in C++ (native/replay_events_js.cc); absent in an older build. */
  /** With a triage spec: findings mode (process notes instead of JSON lines, see replay_events_js.cc). */
  ReplayEventScanner?: new (spec: NativeReplaySpec, triage?: NativeTriageSpec) => NativeReplayEventScanner;
  /** Test hook: the plain-text predicate of the native replay on one string (as UTF-8 bytes). */
  replayPlainText?(plain: NativePlainTextSpec, text: Buffer): boolean;
  /**
   * Keeps only the given capability numbers in every thread (effective, permitted, bounding; clears
   * inheritable and ambient; sets no_new_privs). Optional so fakes need not implement it.
   */
  dropCapabilities?(keep: number[]): { threads: number; threadsMissed: number };
}

/** src/detect/redact/plain-spec.ts PlainTextSpec, as native/replay_events.h reads it. */
export interface NativePlainTextSpec {
  unsafeChars: string;
  shapeWords: string[];
  secretWords: string[];
  programHints: string[];
  programs: string[];
}

export interface NativeReplaySpec {
  /** Record type name -> number (the generated table). */
  typeNumbers: [string, number][];
  /** x86_64 syscall names by number; '' where unknown. */
  x86_64Syscalls: string[];
  plain: NativePlainTextSpec;
  /** A type name not in typeNumbers (bytes as written): its number, 0 when unknown. */
  lookupType: (name: Buffer) => number;
}

/**
 * What one step of the native replay produced: JSON lines, and the events TypeScript is to build,
 * each to be printed at its byte offset of `out` (see native/replay_events_js.cc).
 */
export type NativeReplayStep = [
  out: Buffer | number,
  fallbackBytes: Buffer | null,
  fallbackMeta: Uint32Array | null,
  failures: [string, Buffer][],
  /** Findings mode: `out` holds process notes, each ending at one of these offsets. */
  noteEnds?: Uint32Array | null,
];

export interface NativeReplayStats {
  bytes: number;
  lines: number;
  overlongLines: number;
  records: number;
  events: number;
  incomplete: number;
  evicted: number;
  parseErrors: number;
  lateRecords: number;
  serialGaps: number;
  /** Events printed by C++ / handed to TypeScript. */
  native: number;
  fallback: number;
  /** Findings mode: events the triage replaced by a process note. */
  noted?: number;
  /** Findings mode: exec/connect/open events a rule might care about, and events not understood. */
  triagePassed?: number;
  triageUnsure?: number;
  /**
   * Findings mode with the triage spec's `repeats`: passed events sent as a repeat note of a template
   * (native/repeat_cache.h), templates announced, pushed out, and passed events of a shape never collapsed.
   */
  repeats?: number;
  repeatTemplates?: number;
  repeatEvictions?: number;
  repeatSkipped?: number;
}

export interface NativeReplayEventScanner {
  /** With `target`, output that fits is written there and its length returned (see native/replay_events_js.cc). */
  push(chunk: Buffer, target?: Buffer): NativeReplayStep;
  endFile(target?: Buffer): NativeReplayStep;
  flush(target?: Buffer): NativeReplayStep;
  stats(): NativeReplayStats;
}
