/**
 * The two pseudo records the native reader sends alongside real audit records (native/triage.h):
 *
 * - a process note replaces a whole exec or connect event that no rule could fire on (the triage,
 *   compiled from the rule pack by src/detect/triage-spec.ts). It keeps what the process table needs
 *   and the serial and record types, so serial-gap tracking and record metrics stay exact.
 * - a /proc snapshot (stat and, for a new pid, cgroup) read by the reader thread when the pid's
 *   SYSCALL record arrived, ahead of that event's records.
 *
 * Both are NUL-separated text (values come from the kernel's C strings and /proc, which hold no NUL).
 */
import type { RawRecord } from '../audit/event';
import { REPEAT_NOTE_TYPE } from './repeat-note';

/** Above every netlink message type (16 bits), so they can share a batch with real records. */
export const PROCESS_NOTE_TYPE = 0x10001;
export const PROC_SNAPSHOT_TYPE = 0x10002;

const UNSET_ID = 4294967295;

export interface ProcessNote {
  /** open: only from replay's triage (src/cli/commands/replay-native.ts). */
  kind: 'exec' | 'connect' | 'open';
  serial: number;
  timeMs: number;
  /** Netlink types of the records the note stands for, in arrival order. */
  recordTypes: number[];
  pid: number;
  ppid: number | null;
  uid: number | null;
  /** null when unset (4294967295), as the event builder reports it. */
  auid: number | null;
  tty: string | null;
  exe: string;
  comm: string | null;
  cwd: string | null;
  /** exec: the new argv; connect: null (the process keeps its last known argv). */
  argv: string[] | null;
}

export interface ProcSnapshot {
  pid: number;
  ppid: number;
  /** /proc/<pid>/stat field 22: tells a reused pid apart. */
  startTime: number;
  comm: string;
  /** /proc/<pid>/cgroup text; null when the reader did not read it (pid already known to it). */
  cgroup: string | null;
}

function num(s: string | undefined): number | null {
  if (s === undefined || s === '') return null;
  // Plain decimal digits (what the kernel writes) without Number()'s general parse: a note per boring
  // event makes this hot in replay. Anything else takes Number() and its rules.
  if (s.length < 16) {
    let n = 0;
    let i = 0;
    for (; i < s.length; i++) {
      const d = s.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      n = n * 10 + d;
    }
    if (i === s.length) return n;
  }
  const n = Number(s);
  return Number.isInteger(n) && n >= 0 ? n : null;
}

// Field positions of a process note (native/triage.cc Summarize()).
const F_KIND = 0;
const F_SERIAL = 1;
const F_TIME = 2;
const F_TYPES = 3;
const F_PID = 4;
const F_PPID = 5;
const F_UID = 6;
const F_AUID = 7;
const F_TTY = 8;
const F_EXE = 9;
const F_COMM = 10;
const F_CWD = 11;
const F_HAS_CWD = 12;
const F_ARGV = 13;

/** `num` of text[from, to), reading plain digits in place (no substring) as C++ writes them. */
function numAt(text: string, from: number, to: number): number | null {
  if (to === from) return null;
  if (to - from < 16) {
    let n = 0;
    let i = from;
    for (; i < to; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      n = n * 10 + d;
    }
    if (i === to) return n;
  }
  return num(text.slice(from, to));
}

/** "1300,1307,1302" in text[from, to) as numbers, as split(',').map(Number) reads it, without the strings. */
function typeListAt(text: string, from: number, to: number): number[] {
  const out: number[] = [];
  let n = 0;
  let digits = 0;
  for (let i = from; i <= to; i++) {
    const c = i < to ? text.charCodeAt(i) : 44;
    if (c === 44) {
      out.push(n); // an empty piece is Number('') = 0
      n = 0;
      digits = 0;
      continue;
    }
    const d = c - 48;
    if (d < 0 || d > 9 || digits >= 15) return text.slice(from, to).split(',').map(Number); // not the shape C++ writes
    n = n * 10 + d;
    digits++;
  }
  return out;
}

/** Where each field before the argv ends (its NUL), reused: one note at a time is parsed. */
const fieldEnd = new Int32Array(F_ARGV);

/** Where field `i` starts (after the previous one's NUL). */
function from(i: number): number {
  return i === 0 ? 0 : (fieldEnd[i - 1] as number) + 1;
}

function field(text: string, i: number): string {
  return text.slice(from(i), fieldEnd[i]);
}

/**
 * Null for text that is not a note this version understands (counted by the caller). One per boring
 * event in replay: the fields are found with indexOf and the numbers read in place, so only the
 * strings the process table may keep are cut out (as `text.split('\0')` would read them).
 */
export function parseProcessNote(text: string): ProcessNote | null {
  let at = -1;
  for (let i = 0; i < F_ARGV; i++) {
    at = text.indexOf('\0', at + 1);
    if (at < 0) {
      if (i < F_ARGV - 1) return null; // fewer than F_ARGV fields
      at = text.length; // the has-cwd field is the last: no argv
    }
    fieldEnd[i] = at;
  }
  const k = fieldEnd[F_KIND] === 1 ? text.charCodeAt(0) : 0;
  const kind = k === 101 /* e */ ? 'exec' : k === 99 /* c */ ? 'connect' : k === 111 /* o */ ? 'open' : null;
  const serial = numAt(text, from(F_SERIAL), fieldEnd[F_SERIAL] as number);
  const timeMs = numAt(text, from(F_TIME), fieldEnd[F_TIME] as number);
  const pid = numAt(text, from(F_PID), fieldEnd[F_PID] as number);
  if (kind === null || serial === null || timeMs === null || pid === null) return null;
  const auid = numAt(text, from(F_AUID), fieldEnd[F_AUID] as number);
  const tty = field(text, F_TTY);
  const hasCwd = fieldEnd[F_HAS_CWD] === from(F_HAS_CWD) + 1 && text.charCodeAt(from(F_HAS_CWD)) === 49; /* 1 */
  const argvAt = (fieldEnd[F_HAS_CWD] as number) + 1;
  return {
    kind,
    serial,
    timeMs,
    recordTypes: typeListAt(text, from(F_TYPES), fieldEnd[F_TYPES] as number),
    pid,
    ppid: numAt(text, from(F_PPID), fieldEnd[F_PPID] as number),
    uid: numAt(text, from(F_UID), fieldEnd[F_UID] as number),
    auid: auid === UNSET_ID ? null : auid,
    tty: tty === '' || tty === '(none)' ? null : tty,
    exe: field(text, F_EXE),
    comm: fieldEnd[F_COMM] === from(F_COMM) ? null : field(text, F_COMM),
    cwd: hasCwd ? field(text, F_CWD) : null,
    argv: kind !== 'exec' ? null : argvAt > text.length ? [] : text.slice(argvAt).split('\0'),
  };
}

export function parseProcSnapshot(text: string): ProcSnapshot | null {
  const f = text.split('\0');
  const pid = num(f[0]);
  const ppid = num(f[1]);
  const startTime = num(f[2]);
  if (pid === null || ppid === null || startTime === null || f.length < 4) return null;
  return { pid, ppid, startTime, comm: f[3] as string, cgroup: f.length > 4 ? (f[4] as string) : null };
}

/** The record types a note stands for, without parsing the rest of it (metrics, drop counts). */
export function noteRecordTypes(text: string): number[] {
  let start = 0;
  for (let i = 0; i < F_TYPES; i++) {
    start = text.indexOf('\0', start) + 1;
    if (start === 0) return [];
  }
  const end = text.indexOf('\0', start);
  return end < 0 ? [] : text.slice(start, end).split(',').map(Number);
}

/** How many audit records a batch entry stands for: 1 for a record, N for a note, 0 for a snapshot. */
export function recordsRepresented(rec: RawRecord): number {
  if (rec.type < PROCESS_NOTE_TYPE) return 1;
  if (rec.type === PROCESS_NOTE_TYPE) return Math.max(1, noteRecordTypes(rec.text).length);
  // A repeat note (src/native/repeat-note.ts) ends with the record types it stands for.
  if (rec.type === REPEAT_NOTE_TYPE) return Math.max(1, rec.text.slice(rec.text.lastIndexOf('\0') + 1).split(',').length);
  return 0;
}
