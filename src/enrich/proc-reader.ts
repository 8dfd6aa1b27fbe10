/**
 * The seam between enrichment and /proc. The live reader reads the real files; replay and tests use
 * `nullProcReader` (nothing known) or a fake, so the process table behaves the same without /proc.
 * Every method returns null when the process is gone or the file unreadable — never throws.
 */
import * as fs from 'node:fs';

export interface ProcStat {
  ppid: number;
  /** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. Tells pid reuse apart. */
  startTime: number;
  comm: string;
}

export interface ProcReader {
  readCgroup(pid: number): string | null;
  readStat(pid: number): ProcStat | null;
  readExe(pid: number): string | null;
  /**
   * argv from /proc/<pid>/cmdline, at most CMDLINE_KEEP_BYTES of it kept: an argument cut there ends in
   * `…[+N bytes]` and the arguments after it are one `…[+N args]` (the process table's own form).
   */
  readCmdline(pid: number): string[] | null;
  readCwd(pid: number): string | null;
  /** loginuid; null when unset (4294967295) or unknown. */
  readLoginUid(pid: number): number | null;
}

/** Parses /proc/<pid>/stat text. comm may hold spaces and ')' so fields start after the LAST ')'. */
export function parseProcStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  // After ") " come field 3 (state), 4 (ppid), ... 22 (starttime): index 0 is field 3.
  const from = close + 2;
  const ppid = Number(spaceField(text, from, 1));
  const startTime = Number(spaceField(text, from, 19));
  if (!Number.isFinite(ppid) || !Number.isFinite(startTime)) return null;
  return { ppid, startTime, comm: text.slice(open + 1, close) };
}

/**
 * text.slice(from).split(' ')[n] without building the other ~50 fields: stat is parsed for every new
 * pid (1,600+ a second under exec load) and only two of its fields are used.
 */
function spaceField(text: string, from: number, n: number): string | undefined {
  let start = from;
  for (let i = 0; i < n; i++) {
    const sp = text.indexOf(' ', start);
    if (sp < 0) return undefined;
    start = sp + 1;
  }
  const end = text.indexOf(' ', start);
  return text.slice(start, end < 0 ? text.length : end);
}

// One buffer for every /proc read (the agent reads stat and cgroup of each new pid: thousands of
// reads a second under exec load). /proc files report size 0, so readFileSync allocates and grows
// its own buffer per call and adds an fstat; open + read into this buffer + close is about half the
// cost (bench: 3.3 vs 6.9 us per read). Grows, never shrinks, for the rare long file.
let scratch = Buffer.allocUnsafe(16 * 1024);

function readText(path: string): string | null {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    let n = 0;
    for (;;) {
      if (n === scratch.length) {
        const bigger = Buffer.allocUnsafe(scratch.length * 2);
        scratch.copy(bigger, 0, 0, n);
        scratch = bigger;
      }
      const got = fs.readSync(fd, scratch, n, scratch.length - n, null);
      if (got === 0) break;
      n += got;
    }
    return scratch.toString('latin1', 0, n);
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Bytes of a /proc cmdline kept: the process table keeps this many characters of an argv
 * (process-table.ts TABLE_ARGV_CHARS), and a cmdline is as long as its owner made its arguments (MiBs).
 */
export const CMDLINE_KEEP_BYTES = 4096;

/** What is past the kept bytes of a cmdline: counted while read, never kept. */
interface CmdlineRest {
  bytes: number;
  /** Bytes before the first NUL of the rest (the remainder of the argument the cut fell in), -1: no NUL yet. */
  toFirstNul: number;
  /** NULs after that first one, and whether the last byte read was a NUL. */
  nulsAfter: number;
  endsInNul: boolean;
}

function countRest(rest: CmdlineRest, buf: Buffer, from: number, to: number): void {
  for (let at = buf.indexOf(0, from); at >= 0 && at < to; at = buf.indexOf(0, at + 1)) {
    if (rest.toFirstNul < 0) rest.toFirstNul = rest.bytes + (at - from);
    else rest.nulsAfter++;
  }
  rest.bytes += to - from;
  rest.endsInNul = buf[to - 1] === 0;
}

/**
 * /proc/<pid>/cmdline read with bounded memory: the first `keep` bytes are kept in the shared scratch
 * buffer, the rest is read through the space after them and only counted, so the cut is exact
 * (`…[+N bytes]`, `…[+N args]`) without holding an attacker's MiBs of arguments.
 */
function readCmdlineBounded(path: string, keep: number): string[] | null {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch {
    return null;
  }
  if (scratch.length < 2 * keep) scratch = Buffer.allocUnsafe(2 * keep);
  const rest: CmdlineRest = { bytes: 0, toFirstNul: -1, nulsAfter: 0, endsInNul: false };
  let n = 0;
  try {
    for (;;) {
      const into = n < keep ? n : keep;
      const got = fs.readSync(fd, scratch, into, n < keep ? keep - n : scratch.length - keep, null);
      if (got === 0) break;
      if (n < keep) n += got;
      else countRest(rest, scratch, keep, keep + got);
    }
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
  if (n === 0) return null;
  const text = scratch.toString('latin1', 0, n);
  if (rest.bytes === 0) return (text.endsWith('\0') ? text.slice(0, -1) : text).split('\0');
  const argv = text.split('\0');
  // The kept bytes end inside an argument (its head is the last part) or right after a NUL (last part '').
  const head = argv.pop() as string;
  let argsAfter: number;
  if (head === '') {
    argsAfter = rest.toFirstNul < 0 ? 1 : 1 + rest.nulsAfter + (rest.endsInNul ? 0 : 1);
  } else {
    argv.push(`${head}…[+${rest.toFirstNul < 0 ? rest.bytes : rest.toFirstNul} bytes]`);
    argsAfter = rest.toFirstNul < 0 ? 0 : rest.nulsAfter + (rest.endsInNul ? 0 : 1);
  }
  if (argsAfter > 0) argv.push(`…[+${argsAfter} args]`);
  return argv;
}

function readLink(path: string): string | null {
  try {
    return fs.readlinkSync(path);
  } catch {
    return null;
  }
}

export function createLiveProcReader(procRoot = '/proc'): ProcReader {
  return {
    readCgroup: (pid) => readText(`${procRoot}/${pid}/cgroup`),
    readStat: (pid) => {
      const t = readText(`${procRoot}/${pid}/stat`);
      return t === null ? null : parseProcStat(t);
    },
    readExe: (pid) => readLink(`${procRoot}/${pid}/exe`),
    readCmdline: (pid) => readCmdlineBounded(`${procRoot}/${pid}/cmdline`, CMDLINE_KEEP_BYTES),
    readCwd: (pid) => readLink(`${procRoot}/${pid}/cwd`),
    readLoginUid: (pid) => {
      const t = readText(`${procRoot}/${pid}/loginuid`);
      const n = t === null ? NaN : Number(t.trim());
      return Number.isFinite(n) && n !== 4294967295 ? n : null;
    },
  };
}

export const nullProcReader: ProcReader = {
  readCgroup: () => null,
  readStat: () => null,
  readExe: () => null,
  readCmdline: () => null,
  readCwd: () => null,
  readLoginUid: () => null,
};
