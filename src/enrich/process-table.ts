/**
 * pid -> what we know about the process: built from exec events (argv, exe, cwd) and every syscall
 * event (ppid, uid, auid, tty), and — when live — from /proc through an injectable ProcReader.
 *
 * Why keep exited processes: a sequence (token read, then a connect) is joined through the process
 * tree, and the reader has often exited by the time the connect arrives. The table is an LRU bounded
 * by `maxEntries`; entries are replaced when a pid is reused (different start time or a new exec
 * with another parent).
 */
import type { AuditEvent, ProcessInfo } from '../audit/event';
import { encodeSurrogateEscaped } from '../audit/bytes';
import { parseProcCgroup, type CgroupIdentity } from './cgroup';
import { nullProcReader, type ProcReader, type ProcStat } from './proc-reader';

export interface ProcessEntry {
  pid: number;
  ppid: number | null;
  exe: string | null;
  comm: string | null;
  /** Shared between entries with the same argv (see sharedArgv): never changed in place. */
  argv: readonly string[] | null;
  cwd: string | null;
  /** /proc/<pid>/stat field 22 (clock ticks since boot); null when never read live. */
  startTime: number | null;
  uid: number | null;
  auid: number | null;
  tty: string | null;
  /** undefined = not looked up yet; null = looked up, host process. */
  container: CgroupIdentity | null | undefined;
  /**
   * When /proc was last consulted for this pid (bounds /proc reads to one per interval): the low 30 bits
   * of the wall time in ms, -1 never. A small integer, where the full time is a boxed double in V8: 16
   * bytes more per entry, ~0.5 MiB of a full table. Ages are taken modulo 2^30 ms (12.4 days).
   */
  checkedAt: number;
  /** The table's touch clock when the entry was last put at the recent end of its Map (see touch()). */
  movedAt: number;
}

export interface ProcessTableOptions {
  reader?: ProcReader;
  maxEntries?: number;
  /** Maximum ancestors walked by parents() and container fallback. */
  maxDepth?: number;
  /** A known pid's start time is re-checked in /proc at most this often (pid reuse detection). */
  recheckMs?: number;
}

/**
 * Values up to this long are shared between entries: exe, comm, cwd, tty and most argv words repeat
 * across thousands of processes (a heap snapshot of the agent at 1,000 exec/s held 32k copies each of
 * "/bin/true", "true" and its cwd: ~7 MiB of the 38 MiB heap). At most SHARED_MAX values are kept;
 * when full the map starts over, so distinct values an attacker makes up cost a lookup, never memory.
 */
const SHARED_CHARS = 256;
const SHARED_MAX = 4096;
const shared = new Map<string, string>();

/**
 * A copy of `s` that does not keep the record text it was cut from alive, shared with every other
 * entry holding the same short value. V8 represents a slice of 13 or more characters as a view into
 * its parent, so an entry holding `exe` or an argv element straight from the parser pins the whole
 * SYSCALL / EXECVE record for as long as the entry lives: with 32k entries that was ~20 MB of record
 * text at 1,600 exec/s (bench/memory.js heap snapshot).
 */
export function ownString(s: string): string {
  if (s.length > SHARED_CHARS) return (' ' + s).slice(1); // flattened into a fresh parent of its own size
  const known = shared.get(s);
  if (known !== undefined) return known;
  // A slice of (' ' + s) would still be a view (into the flattened concatenation): the JSON round trip
  // gives a string of its own, lone surrogates included. Once per distinct value.
  const own = s.length < 13 ? s : (JSON.parse(JSON.stringify(s)) as string);
  if (shared.size >= SHARED_MAX) shared.clear();
  shared.set(own, own);
  return own;
}

/**
 * Characters of argv an entry keeps. The event's own argv is matched in full (rules cut it to their
 * own bound); the table's copy serves later events of the pid and its children's parent chains, and
 * must not let an attacker's 2 MiB argvs times `maxEntries` fill the agent's memory: 32k entries of at
 * most 4 KiB each, where a full argv would be 64 GiB.
 */
export const TABLE_ARGV_CHARS = 4096;

/**
 * Argvs are shared like the strings in them: a node runs the same few commands thousands of times
 * (probes, shell loops, cron), and an entry's own argv array cost ~76 bytes (the array and its
 * elements), 2.3 MiB of the table in a heap snapshot at 1,000 exec/s of one command. Only argvs of at
 * most SHARED_CHARS characters in all are shared, at most SHARED_ARGVS of them (starting over when
 * full): distinct argvs an attacker makes up cost a join and a lookup, never memory. Shared arrays are
 * frozen, so that a change in place through one entry cannot rewrite another's.
 */
const SHARED_ARGVS = 1024;
const sharedArgvs = new Map<string, readonly string[]>();

/** Word for word the same argv (both null counts as the same). */
export function sameArgv(a: readonly string[] | null, b: readonly string[] | null): boolean {
  if (a === b) return true;
  if (a === null || b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sharedArgv(argv: readonly string[]): readonly string[] {
  // NUL cannot be in a word the kernel logged, but a replayed log's hex may decode to one: the words
  // are compared, and an argv whose key names another is kept unshared.
  const key = argv.join('\0');
  const known = sharedArgvs.get(key);
  if (known !== undefined) return sameArgv(known, argv) ? known : argv.map(ownString);
  const own = Object.freeze(argv.map(ownString));
  if (sharedArgvs.size >= SHARED_ARGVS) sharedArgvs.clear();
  sharedArgvs.set(key, own);
  return own;
}

/** A copy of argv within TABLE_ARGV_CHARS: the argument that does not fit is cut and ends in `…[+N bytes]`, the rest become `…[+N args]`. */
function ownArgv(argv: readonly string[], lengths?: readonly number[]): readonly string[] {
  // map() makes an array of the argv's own length: one grown by push() from [] keeps room for 16
  // elements (~150 bytes a process for a one-word argv, 5 MiB of the heap with a full table).
  let chars = 0;
  for (let i = 0; i < argv.length; i++) chars += (argv[i] as string).length;
  if (chars <= SHARED_CHARS) return sharedArgv(argv);
  if (chars < TABLE_ARGV_CHARS) return argv.map(ownString); // all fit, budget left: what the loop below keeps
  const out: string[] = [];
  let budget = TABLE_ARGV_CHARS;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (budget <= 0) {
      out.push(`…[+${argv.length - i} args]`);
      break;
    }
    if (a.length <= budget) {
      out.push(ownString(a));
      budget -= a.length;
      continue;
    }
    // The argument that does not fit keeps its head and the marker; redaction knows a marked head is
    // cut text (detect/bound.ts), so the start of a secret whose end is gone is redacted too.
    let cut = budget;
    const c = a.charCodeAt(cut - 1);
    if (c >= 0xd800 && c <= 0xdbff) cut--; // never split a surrogate pair
    // `lengths`: the builder already cut this argv (src/audit/argv-bound.ts), so the count is from the
    // exact length, not from what is left of the argument.
    const kept = a.slice(0, cut);
    const dropped = lengths?.[i] !== undefined ? (lengths[i] as number) - encodeSurrogateEscaped(kept).length : encodeSurrogateEscaped(a.slice(cut)).length;
    out.push(`${kept}…[+${dropped} bytes]`);
    budget = 0;
  }
  return out;
}

function inChain(chain: readonly ProcessEntry[], pid: number): boolean {
  for (let i = 0; i < chain.length; i++) if ((chain[i] as ProcessEntry).pid === pid) return true;
  return false;
}

const CLOCK_MASK = 0x3fffffff;

function clockBits(ms: number): number {
  return ms & CLOCK_MASK;
}

/** Whether /proc was consulted for the entry less than `ms` ago (a clock gone back counts as long ago). */
function checkedWithin(e: ProcessEntry, nowMs: number, ms: number): boolean {
  return e.checkedAt >= 0 && ((nowMs - e.checkedAt) & CLOCK_MASK) < ms;
}

export class ProcessTable {
  private readonly entries = new Map<number, ProcessEntry>();
  private readonly reader: ProcReader;
  private readonly maxEntries: number;
  /** Entries allowed past maxEntries before a trim back to it (see touch()). */
  private readonly trimSlack: number;
  private readonly maxDepth: number;
  private readonly recheckMs: number;
  /**
   * The entry the last touch() moved to the end of the map, while nothing was inserted after it.
   * A record's pid is noted and then its event observed: touching the same entry twice in a row is
   * common, and each delete + set leaves a hole in V8's ordered hash table that later costs a rehash
   * of all 32k entries (touch was ~5% of the agent's CPU under exec load).
   */
  private newest: ProcessEntry | null = null;
  /** Touches so far (touch()). */
  private clock = 0;
  private readonly cgroupCache = new Map<string, CgroupIdentity | null>();
  /** pid -> when a /proc read of it as a missing ancestor failed (see repair()). */
  private readonly unreadable = new Map<number, number>();

  constructor(opts: ProcessTableOptions = {}) {
    this.reader = opts.reader ?? nullProcReader;
    this.maxEntries = opts.maxEntries ?? 32_768;
    this.trimSlack = Math.min(2048, Math.floor(this.maxEntries / 16));
    this.maxDepth = opts.maxDepth ?? 16;
    this.recheckMs = opts.recheckMs ?? 1_000;
  }

  get size(): number {
    return this.entries.size;
  }

  get(pid: number): ProcessEntry | undefined {
    return this.entries.get(pid);
  }

  /**
   * Called as soon as any record carrying a pid arrives, before its event is complete, so that
   * /proc/<pid>/cgroup is read while the process still exists. Cheap when the pid is known and its
   * start time matches; a changed start time means pid reuse and starts a fresh entry.
   */
  noteRecordPid(pid: number, nowMs = Date.now()): void {
    const known = this.entries.get(pid);
    if (known && known.container !== undefined && checkedWithin(known, nowMs, this.recheckMs)) return;
    const stat = this.reader.readStat(pid);
    if (!stat) return;
    let e = known;
    if (!e || (e.startTime !== null && e.startTime !== stat.startTime)) {
      e = this.fresh(pid);
    }
    e.checkedAt = clockBits(nowMs);
    e.startTime = stat.startTime;
    e.ppid ??= stat.ppid;
    e.comm ??= stat.comm;
    if (e.container === undefined) {
      const text = this.reader.readCgroup(pid);
      if (text !== null) e.container = this.cgroupIdentity(text);
    }
    this.touch(e);
    // The parent matters for the chain and for the container fallback; read it while it exists too.
    if (!this.entries.has(stat.ppid) && stat.ppid > 1) this.repair(stat.ppid, stat.startTime, nowMs);
  }

  /**
   * A /proc snapshot the native reader took when the pid's SYSCALL record arrived (native/proc_snapshot.h):
   * the same as noteRecordPid() with the reads already done off the JavaScript thread. `cgroup` is null
   * when the reader knew the pid already; the table reads it itself if it does not (its LRU is smaller).
   */
  applyProcSnapshot(s: { pid: number; ppid: number; startTime: number; comm: string; cgroup: string | null }, nowMs = Date.now()): void {
    let e = this.entries.get(s.pid);
    if (!e || (e.startTime !== null && e.startTime !== s.startTime)) e = this.fresh(s.pid);
    e.checkedAt = clockBits(nowMs);
    e.startTime = s.startTime;
    e.ppid ??= s.ppid;
    e.comm ??= ownString(s.comm);
    if (e.container === undefined) {
      const text = s.cgroup ?? this.reader.readCgroup(s.pid);
      if (text !== null) e.container = this.cgroupIdentity(text);
    }
    this.touch(e);
    if (!this.entries.has(s.ppid) && s.ppid > 1) this.repair(s.ppid, s.startTime, nowMs);
  }

  /**
   * Processes of one node share a handful of cgroups: parse each distinct /proc/<pid>/cgroup text once.
   * Identities are never mutated after parsing, so entries may share one.
   */
  private cgroupIdentity(text: string): CgroupIdentity | null {
    const cached = this.cgroupCache.get(text);
    if (cached !== undefined) return cached;
    const id = parseProcCgroup(text);
    if (this.cgroupCache.size >= 1024) this.cgroupCache.clear();
    this.cgroupCache.set(ownString(text), id);
    return id;
  }

  /** Folds an event into the table and returns the entry for its process (null without a pid). */
  observe(ev: AuditEvent): ProcessEntry | null {
    const p = ev.process;
    if (!p || p.pid === null) return null;
    return this.observeProcess(p);
  }

  /** The process side of an event the native triage summarized (src/native/process-note.ts). */
  observeProcess(p: Pick<ProcessInfo, 'pid' | 'ppid' | 'exe' | 'comm' | 'uid' | 'auid' | 'tty' | 'argv' | 'cwd' | 'argvCut'>): ProcessEntry | null {
    if (p.pid === null) return null;
    let e = this.entries.get(p.pid);
    const isExec = p.argv !== null;
    if (e && e.startTime === null && isExec && p.ppid !== null && e.ppid !== null && e.ppid !== p.ppid) {
      // Replay (no start time): same pid, different parent at exec means the pid was reused. Live,
      // noteRecordPid already told reuse apart by start time.
      e = undefined;
    }
    e ??= this.fresh(p.pid);
    // Keep the parent seen at exec: after `runc exec` exits its child is reparented to the shim,
    // and the exec-time parent is what ties the process to its container and its launcher.
    if (p.ppid !== null && (isExec || e.ppid === null)) e.ppid = p.ppid;
    // Strings are copied only when they change: most events repeat what the entry already holds.
    if (p.exe !== null && p.exe !== e.exe) e.exe = ownString(p.exe);
    if (p.comm !== null && p.comm !== e.comm) e.comm = ownString(p.comm);
    if (p.uid !== null) e.uid = p.uid;
    e.auid = p.auid;
    e.tty = p.tty === null || p.tty === e.tty ? p.tty : ownString(p.tty);
    if (isExec) {
      e.argv = ownArgv(p.argv as string[], p.argvCut?.lengths);
      if (p.cwd !== null && p.cwd !== e.cwd) e.cwd = ownString(p.cwd);
    } else if (p.cwd !== null && e.cwd === null) {
      e.cwd = ownString(p.cwd);
    }
    this.touch(e);
    return e;
  }

  /**
   * A non-exec event whose process facts equal those of the one just observed for `pid`: what
   * observeProcess would do with it (every field already holds its value), without parsing it again.
   * False when the table no longer holds the pid (the caller then observes the event in full).
   */
  observedAgain(pid: number): boolean {
    const e = this.entries.get(pid);
    if (!e) return false;
    this.touch(e);
    return true;
  }

  /**
   * Ancestors, nearest first; stops at pid 0/1, unknown pids, `maxDepth`, or a cycle. An ancestor the
   * table no longer holds is read from /proc again while it lives (see repair()): a storm of short-lived
   * children pushes a quiet parent's own ancestors out of the LRU, and a chain cut there would change
   * what the rules and the behaviour key see of the tree.
   */
  parents(pid: number, maxDepth = this.maxDepth, nowMs = Date.now()): ProcessEntry[] {
    const out: ProcessEntry[] = [];
    let child = this.entries.get(pid);
    let cur = child?.ppid ?? null;
    // A cycle is a pid already in the chain: at most maxDepth of them, scanned instead of a Set per call
    // (this runs for every event's view).
    while (cur !== null && cur > 0 && out.length < maxDepth && cur !== pid && !inChain(out, cur)) {
      const e = this.entries.get(cur) ?? this.repair(cur, child?.startTime ?? null, nowMs);
      if (!e) break;
      out.push(e);
      child = e;
      cur = e.ppid;
    }
    return out;
  }

  /**
   * Reads a missing ancestor from /proc. Refused when the pid now belongs to a process younger than its
   * supposed child (the parent died and the pid was reused). A pid that could not be read is not tried
   * again for `recheckMs`, so chains ending at a dead parent cost no /proc read per event.
   */
  private repair(pid: number, childStart: number | null, nowMs: number): ProcessEntry | undefined {
    const failed = this.unreadable.get(pid);
    if (failed !== undefined && nowMs - failed < this.recheckMs) return undefined;
    const stat = this.reader.readStat(pid);
    if (!stat || (childStart !== null && stat.startTime > childStart)) {
      if (this.unreadable.size >= 1024) this.unreadable.clear();
      this.unreadable.set(pid, nowMs);
      return undefined;
    }
    this.fromProc(pid, stat);
    return this.entries.get(pid);
  }

  /** True when `ancestor` is `pid` itself or one of its known ancestors. */
  isInTree(pid: number, ancestor: number): boolean {
    if (pid === ancestor) return true;
    return this.parents(pid).some((e) => e.pid === ancestor);
  }

  /**
   * Container of a pid: its own cgroup when known, else the nearest ancestor whose cgroup was read.
   * A process can only be in its parent's container or a nested one, so the fallback is safe.
   */
  /**
   * The container of a pid that is the *target* of an event (`cat /proc/<pid>/environ`), not its
   * actor: often a long-running process we never saw exec, so its cgroup is read live when the table
   * does not know it (null in replay, where the reader reads nothing).
   */
  containerOfTarget(pid: number): CgroupIdentity | null {
    const own = this.entries.get(pid);
    if (own && own.container !== undefined) return own.container ?? this.containerOf(pid);
    const text = this.reader.readCgroup(pid);
    return text !== null ? this.cgroupIdentity(text) : this.containerOf(pid);
  }

  containerOf(pid: number): CgroupIdentity | null {
    const own = this.entries.get(pid);
    if (own && own.container !== undefined) return own.container;
    for (const p of this.parents(pid)) {
      if (p.container !== undefined) return p.container;
    }
    return null;
  }

  private fromProc(pid: number, known?: ProcStat): void {
    const stat = known ?? this.reader.readStat(pid);
    if (!stat) return;
    const e = this.fresh(pid);
    e.startTime = stat.startTime;
    e.ppid = stat.ppid;
    e.comm = stat.comm;
    e.exe = this.reader.readExe(pid);
    e.argv = this.reader.readCmdline(pid);
    e.cwd = this.reader.readCwd(pid);
    e.auid = this.reader.readLoginUid(pid);
    const text = this.reader.readCgroup(pid);
    if (text !== null) e.container = this.cgroupIdentity(text);
    this.touch(e);
  }

  private fresh(pid: number): ProcessEntry {
    const e: ProcessEntry = {
      pid,
      ppid: null,
      exe: null,
      comm: null,
      argv: null,
      cwd: null,
      startTime: null,
      uid: null,
      auid: null,
      tty: null,
      container: undefined,
      checkedAt: -1,
      movedAt: this.clock,
    };
    this.entries.set(pid, e);
    this.newest = null;
    return e;
  }

  /**
   * Map iteration order is insertion order: re-inserting marks most recently used. Only an entry that
   * has drifted out of the recent quarter of the table is re-inserted: a Map delete + set per event
   * (a new process is inserted, then touched) was ~2.5 us of the ~3.5 us a new process cost the table
   * at 32k entries. An entry cannot be evicted before maxEntries later insertions or moves, and one
   * touched is at most maxEntries/4 of them from the recent end, so every entry touched within the
   * last 3/4 * maxEntries touches is still held: LRU to within a quarter of the table.
   */
  private touch(e: ProcessEntry): void {
    if (e === this.newest) return; // already the most recently used
    this.newest = e;
    this.clock++;
    if (this.clock - e.movedAt > this.maxEntries >> 2) {
      e.movedAt = this.clock;
      this.entries.delete(e.pid);
      this.entries.set(e.pid, e);
    }
    if (this.entries.size <= this.maxEntries + this.trimSlack) return;
    // Trimmed in batches: an iterator starts by skipping every hole earlier deletions left at the front
    // of V8's ordered hash table, so finding the oldest entry once per insert cost up to the table's
    // capacity per new process once a storm had filled it (as src/audit/recent-stamps.ts found).
    let excess = this.entries.size - this.maxEntries;
    for (const pid of this.entries.keys()) {
      if (excess-- <= 0) break;
      this.entries.delete(pid);
    }
  }

}
