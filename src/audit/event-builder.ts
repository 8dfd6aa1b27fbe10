/**
 * Turns the records of one event into the typed AuditEvent (src/audit/event.ts). One pass over each
 * record's fields with a shared cursor; values are sliced out only for the fields we keep.
 *
 * Choices worth knowing:
 *  - `process` is filled only when the event has a SYSCALL record (USER_* messages also carry pid/uid,
 *    but they describe a user-space claim, not a syscall) and is null otherwise.
 *  - `key`: several matching rules make the kernel join keys with \x01 (and hex-encode the value);
 *    `key` is the first, `keys` (present only then) all of them.
 *  - auid/ses 4294967295 ("unset") become null; tty "(none)" becomes null; `(null)`/`?` are null.
 *  - `paths` are ordered by their `item=` number, whatever order the records arrived in.
 */
import type { AuditEvent, PathInfo, ProcessInfo, Sockaddr, SyscallInfo, UringInfo } from './event';
import { FieldCursor, type ParsedRecord } from './record';
import { AUDIT_CWD, AUDIT_EOE, AUDIT_EXECVE, AUDIT_PATH, AUDIT_PROCTITLE, AUDIT_SOCKADDR, AUDIT_SYSCALL, AUDIT_URINGOP } from './record-types';
import { uringOpName } from './uring-ops';
import { ArgvBuilder, type ArgvMode } from './execve';
import { decodeProctitle } from './proctitle';
import { decodeSockaddr } from './sockaddr';
import { archByteOrder, archName, syscallName } from './syscall-names';

const UNSET_ID = 4294967295;
const KEY_SEPARATOR = '\x01';

/** Shared cursor: building is synchronous and never re-entrant. */
const cursor = new FieldCursor();

export interface BuildCounters {
  /** Values that could not be decoded exactly (bad hex sockaddr, argv length mismatch, ...). */
  decodeErrors: number;
  uringEvents?: number;
  uringUnknownOps?: number;
  /** Bounded builds: events whose argv was cut, arguments cut, and bytes not kept (argv-bound.ts). */
  argvCutEvents?: number;
  argvCutArgs?: number;
  argvCutBytes?: number;
}

export interface BuildOptions {
  /** 'exact' (the default: `replay --events`) or 'bounded' (the pipeline: see ./argv-bound.ts). */
  argv?: ArgvMode;
}

const ARCH = / arch=([0-9a-fA-F]{1,8})(?: |$)/;
const isSyscallRecord = (r: ParsedRecord): boolean => r.type === AUDIT_SYSCALL;

export function buildEvent(records: readonly ParsedRecord[], incomplete: boolean, counters?: BuildCounters, opts?: BuildOptions): AuditEvent {
  const first = records[0];
  if (first === undefined) throw new Error('buildEvent needs at least one record');
  const timeMs = first.sec * 1000 + first.ms;
  const types: string[] = new Array<string>(records.length);
  const raw: { type: string; text: string }[] = new Array<{ type: string; text: string }>(records.length);

  let syscall: SyscallInfo | null = null;
  let proc: ProcessInfo | null = null;
  let cwd: string | null = null;
  let title: string | null = null;
  let argv: ArgvBuilder | null = null;
  let sockaddr: Sockaddr | null = null;
  let rawKey: string | null = null;
  let keySeen = false;
  const paths: { item: number; info: PathInfo }[] = [];
  let problems: string[] | null = null;
  let sawSyscallRecord = false;
  let uring: UringInfo | null = null;
  let uringProc: ProcessInfo | null = null;
  let uringKey: { key: string | null; keySeen: boolean } | null = null;

  for (let r = 0; r < records.length; r++) {
    const rec = records[r] as ParsedRecord;
    types[r] = rec.typeName;
    raw[r] = { type: rec.typeName, text: rec.text };
    switch (rec.type) {
      case AUDIT_SYSCALL: {
        if (sawSyscallRecord) break; // a duplicate SYSCALL (late/replayed) must not overwrite the first
        sawSyscallRecord = true;
        const s = readSyscall(rec);
        syscall = s.syscall;
        proc = s.process;
        if (s.keySeen) {
          keySeen = true;
          rawKey = s.key;
        }
        break;
      }
      case AUDIT_EXECVE:
        argv ??= new ArgvBuilder(opts?.argv);
        argv.addRecord(cursor.resetRecord(rec));
        break;
      case AUDIT_CWD:
        cursor.resetRecord(rec);
        while (cursor.next()) if (cursor.keyIs('cwd')) cwd = cursor.untrusted();
        break;
      case AUDIT_PATH:
        paths.push(readPath(rec));
        break;
      case AUDIT_SOCKADDR:
        if (sockaddr !== null) break;
        cursor.resetRecord(rec);
        while (cursor.next()) {
          if (!cursor.keyIs('saddr')) continue;
          const res = decodeSockaddr(cursor.text, cursor.valueStart, cursor.valueEnd, archByteOrder(syscall?.arch ?? records.find(isSyscallRecord)?.text.match(ARCH)?.[1] ?? null));
          sockaddr = res.sockaddr;
          if (res.malformed) {
            (problems ??= []).push('sockaddr: malformed or truncated saddr');
            if (counters) counters.decodeErrors++;
          }
          break;
        }
        break;
      case AUDIT_PROCTITLE:
        cursor.resetRecord(rec);
        while (cursor.next()) {
          if (!cursor.keyIs('proctitle')) continue;
          const pt = decodeProctitle(cursor.text, cursor.valueStart, cursor.valueEnd, cursor.quote !== 0);
          if (pt === null) {
            (problems ??= []).push('proctitle: not valid hex');
            if (counters) counters.decodeErrors++;
          } else title = pt.title;
          break;
        }
        break;
      case AUDIT_URINGOP: {
        // Same task fields as SYSCALL (pid, ppid, uid..., success, exit, key) plus uring_op; no exe/comm.
        const u = readSyscall(rec);
        let op: number | null = null;
        cursor.resetRecord(rec, false);
        while (cursor.next()) {
          if (cursor.keyIs('uring_op')) {
            op = cursor.int();
            break;
          }
        }
        uring = { op, name: uringOpName(op), success: u.syscall.success, exit: u.syscall.exit };
        uringProc ??= u.process;
        if (u.keySeen && !uringKey) uringKey = { key: u.key, keySeen: true };
        break;
      }
      case AUDIT_EOE:
        break;
      default:
        break;
    }
  }

  if (uring !== null) {
    if (counters) counters.uringEvents = (counters.uringEvents ?? 0) + 1;
    if (uring.name === null) {
      (problems ??= []).push(`uringop: unknown io_uring op ${uring.op === null ? '(missing)' : uring.op}`);
      if (counters) counters.uringUnknownOps = (counters.uringUnknownOps ?? 0) + 1;
    }
    // An op run by an io-wq worker has no SYSCALL record: the URINGOP record is the syscall.
    if (!sawSyscallRecord) {
      syscall = { arch: 'io_uring', nr: uring.op, name: uring.name, success: uring.success, exit: uring.exit };
      proc = uringProc;
      if (uringKey && !keySeen) {
        keySeen = true;
        rawKey = uringKey.key;
      }
    }
  }

  // Records such as CONFIG_CHANGE carry their own key= when there is no SYSCALL record.
  if (!keySeen) {
    for (const rec of records) {
      if (rec.type === AUDIT_SYSCALL || rec.type === AUDIT_EXECVE) continue;
      cursor.resetRecord(rec, false);
      while (cursor.next()) {
        if (cursor.keyIs('key')) {
          keySeen = true;
          rawKey = cursor.untrusted();
          break;
        }
      }
      if (keySeen) break;
    }
  }

  if (proc !== null) {
    proc.cwd = cwd;
    proc.title = title;
    if (argv !== null) {
      const built = argv.build();
      proc.argv = built.argv;
      if (built.cut !== undefined) {
        proc.argvCut = built.cut;
        if (counters) {
          counters.argvCutEvents = (counters.argvCutEvents ?? 0) + 1;
          counters.argvCutArgs = (counters.argvCutArgs ?? 0) + built.cut.args;
          counters.argvCutBytes = (counters.argvCutBytes ?? 0) + built.cut.bytes;
        }
      }
      if (built.problems.length > 0) {
        (problems ??= []).push(...built.problems);
        if (counters) counters.decodeErrors += built.problems.length;
      }
    }
  }

  if (paths.length > 1) paths.sort((a, b) => a.item - b.item);

  const ev: AuditEvent = {
    id: first.id,
    time: isoTime(first.sec, first.ms),
    timeMs,
    serial: first.serial,
    node: first.node,
    types,
    incomplete,
    syscall,
    process: proc,
    paths: paths.map((p) => p.info),
    sockaddr,
    key: null,
    records: raw,
  };
  if (rawKey !== null) {
    const sep = rawKey.indexOf(KEY_SEPARATOR);
    if (sep < 0) ev.key = rawKey;
    else {
      const keys = rawKey.split(KEY_SEPARATOR);
      ev.key = keys[0] ?? null;
      ev.keys = keys;
    }
  }
  if (uring !== null) ev.uring = uring;
  if (problems !== null) ev.problems = problems;
  return ev;
}

function readSyscall(rec: ParsedRecord): { syscall: SyscallInfo; process: ProcessInfo; key: string | null; keySeen: boolean } {
  const syscall: SyscallInfo = { arch: null, nr: null, name: null, success: null, exit: null };
  const p: ProcessInfo = {
    pid: null,
    ppid: null,
    uid: null,
    euid: null,
    gid: null,
    egid: null,
    auid: null,
    ses: null,
    tty: null,
    comm: null,
    exe: null,
    cwd: null,
    argv: null,
    title: null,
  };
  let key: string | null = null;
  let keySeen = false;
  const c = cursor.resetRecord(rec, false);
  while (c.next()) {
    const len = c.keyEnd - c.keyStart;
    // Dispatch on length first so most keys are rejected without comparing characters.
    switch (len) {
      case 3:
        if (c.keyIs('pid')) p.pid = c.int();
        else if (c.keyIs('uid')) p.uid = c.int();
        else if (c.keyIs('gid')) p.gid = c.int();
        else if (c.keyIs('ses')) p.ses = unsetToNull(c.int());
        else if (c.keyIs('tty')) p.tty = c.quote === 0 && c.raw() === '(none)' ? null : c.isAbsent() ? null : c.raw();
        else if (c.keyIs('exe')) p.exe = c.untrusted();
        else if (c.keyIs('key')) {
          keySeen = true;
          key = c.untrusted();
        }
        break;
      case 4:
        if (c.keyIs('arch')) {
          const a = c.raw();
          syscall.arch = archName(a);
        } else if (c.keyIs('ppid')) p.ppid = c.int();
        else if (c.keyIs('auid')) p.auid = unsetToNull(c.int());
        else if (c.keyIs('euid')) p.euid = c.int();
        else if (c.keyIs('egid')) p.egid = c.int();
        else if (c.keyIs('comm')) p.comm = c.untrusted();
        else if (c.keyIs('exit')) syscall.exit = c.int();
        break;
      case 7:
        if (c.keyIs('syscall')) syscall.nr = c.int();
        else if (c.keyIs('success')) {
          const v = c.raw();
          syscall.success = v === 'yes' ? true : v === 'no' ? false : null;
        }
        break;
      default:
        break;
    }
  }
  if (syscall.nr !== null) syscall.name = syscallName(syscall.arch, syscall.nr);
  return { syscall, process: p, key, keySeen };
}

function readPath(rec: ParsedRecord): { item: number; info: PathInfo } {
  const info: PathInfo = { name: null, nametype: null, inode: null, mode: null };
  let item = Number.MAX_SAFE_INTEGER;
  const c = cursor.resetRecord(rec, false);
  while (c.next()) {
    if (c.keyIs('item')) item = c.int() ?? item;
    else if (c.keyIs('name')) info.name = c.untrusted();
    else if (c.keyIs('nametype')) info.nametype = c.raw();
    else if (c.keyIs('inode')) info.inode = c.int();
    else if (c.keyIs('mode')) info.mode = c.isAbsent() ? null : c.raw();
    else if (c.keyIs('dev') && !c.isAbsent()) info.dev = c.raw();
  }
  return { item, info };
}

/**
 * `new Date(sec * 1000 + ms).toISOString()`, with the formatting done once per second: the events
 * of a log arrive second by second, and toISOString() was the costliest line of building an event.
 * Only the milliseconds (`.mmmZ`, the same for every year toISOString can print) are spliced in.
 */
let isoSec = -1;
let isoPrefix = '';
const MS3: string[] = Array.from({ length: 1000 }, (_, i) => `.${String(i).padStart(3, '0')}Z`);

export function isoTime(sec: number, ms: number): string {
  if (sec !== isoSec) {
    const iso = new Date(sec * 1000).toISOString();
    isoPrefix = iso.slice(0, iso.length - 5);
    isoSec = sec;
  }
  return isoPrefix + (MS3[ms] as string);
}

function unsetToNull(n: number | null): number | null {
  return n === UNSET_ID ? null : n;
}
