import { describe, expect, it } from 'vitest';
import { ProcessTable, TABLE_ARGV_CHARS } from '../../../src/enrich/process-table';
import { parseProcStat, type ProcReader } from '../../../src/enrich/proc-reader';
import { makeEvent } from './helpers';

const CID = 'b77cf884c985acfdc4a742df4c3299307b74a687de98ab3182f19332ee49ab95';
const UID = '4407d6d9-5a5e-4394-8ac2-54145e3d7f7f';

function fakeProc(procs: Record<number, { ppid: number; start: number; cgroup?: string; exe?: string }>): ProcReader {
  return {
    readStat: (pid) => (procs[pid] ? { ppid: procs[pid].ppid, startTime: procs[pid].start, comm: 'c' } : null),
    readCgroup: (pid) => procs[pid]?.cgroup ?? (procs[pid] ? '0::/\n' : null),
    readExe: (pid) => procs[pid]?.exe ?? null,
    readCmdline: () => null,
    readCwd: () => null,
    readLoginUid: () => null,
  };
}

describe('parseProcStat', () => {
  it('takes ppid and start time (field 22) after the last ")" even when comm has spaces and parens', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[1] = '42'; // field 4 ppid
    fields[19] = '987654'; // field 22 starttime
    expect(parseProcStat(`1234 (a) b (c) ${fields.join(' ')}`)).toEqual({ ppid: 42, startTime: 987654, comm: 'a) b (c' });
  });
});

describe('ProcessTable', () => {
  it('builds entries and a parent chain from exec events, nearest first', () => {
    const t = new ProcessTable();
    t.observe(makeEvent({ process: { pid: 10, ppid: 1, exe: '/usr/bin/bash', argv: ['bash'] } }));
    t.observe(makeEvent({ process: { pid: 20, ppid: 10, exe: '/usr/bin/xargs', argv: ['xargs', 'docker', 'inspect'] } }));
    t.observe(makeEvent({ process: { pid: 30, ppid: 20, exe: '/usr/bin/docker', argv: ['docker', 'inspect', 'abc'], cwd: '/root' } }));
    expect(t.get(30)?.argv).toEqual(['docker', 'inspect', 'abc']);
    expect(t.get(30)?.cwd).toBe('/root');
    expect(t.parents(30).map((e) => e.pid)).toEqual([20, 10]);
    expect(t.isInTree(30, 10)).toBe(true);
    expect(t.isInTree(10, 30)).toBe(false);
  });

  it('keeps at most TABLE_ARGV_CHARS of an argv, marking what it cut (a 2 MiB argv per entry would fill memory)', () => {
    const t = new ProcessTable();
    const big = Array.from({ length: 16 }, (_, i) => String.fromCharCode(97 + i).repeat(120_000));
    t.observe(makeEvent({ process: { pid: 40, argv: ['kubectl', 'get', ...big] } }));
    const kept = t.get(40)?.argv ?? [];
    expect(kept.slice(0, 2)).toEqual(['kubectl', 'get']);
    const room = TABLE_ARGV_CHARS - 'kubectlget'.length;
    expect(kept[2]).toBe(`${'a'.repeat(room)}…[+${120_000 - room} bytes]`);
    expect(kept[3]).toBe('…[+15 args]');
    expect(kept).toHaveLength(4);
    // A surrogate escape (a non-UTF-8 byte) counts as the one byte it stands for.
    t.observe(makeEvent({ process: { pid: 41, argv: ['x', '\udcff'.repeat(TABLE_ARGV_CHARS + 10)] } }));
    expect(t.get(41)?.argv?.[1]).toMatch(/…\[\+11 bytes\]$/);
    // Small argvs are kept as they are.
    t.observe(makeEvent({ process: { pid: 42, argv: ['cat', 'a'.repeat(100)] } }));
    expect(t.get(42)?.argv).toEqual(['cat', 'a'.repeat(100)]);
  });

  it('is cycle-safe and depth-bounded', () => {
    const t = new ProcessTable({ maxDepth: 3 });
    t.observe(makeEvent({ process: { pid: 1000, ppid: 1001, argv: ['a'] } }));
    t.observe(makeEvent({ process: { pid: 1001, ppid: 1000, argv: ['b'] } }));
    expect(t.parents(1000).map((e) => e.pid)).toEqual([1001]);
    for (let i = 0; i < 10; i++) t.observe(makeEvent({ process: { pid: 2000 + i, ppid: 2000 + i + 1, argv: ['x'] } }));
    expect(t.parents(2000)).toHaveLength(3);
  });

  it('is an LRU bounded by maxEntries', () => {
    const t = new ProcessTable({ maxEntries: 3 });
    for (const pid of [1, 2, 3]) t.observe(makeEvent({ process: { pid, argv: ['x'] } }));
    t.observe(makeEvent({ process: { pid: 1, argv: ['again'] } })); // 1 becomes most recent
    t.observe(makeEvent({ process: { pid: 4, argv: ['x'] } }));
    expect(t.size).toBe(3);
    expect(t.get(2)).toBeUndefined();
    expect(t.get(1)?.argv).toEqual(['again']);
  });

  it('keeps an entry touched within 3/4 of maxEntries touches, though it only moves when out of the recent quarter', () => {
    const t = new ProcessTable({ maxEntries: 64 });
    t.observe(makeEvent({ process: { pid: 7, argv: ['loadgen'] } })); // the storm's parent, touched now and then
    t.observe(makeEvent({ process: { pid: 8, argv: ['quiet'] } })); // seen once
    for (let i = 0; i < 2000; i++) {
      t.observe(makeEvent({ process: { pid: 1000 + i, argv: ['true'] } }));
      if (i % 47 === 0) t.observe(makeEvent({ process: { pid: 7 } }));
      expect(t.size).toBeLessThanOrEqual(64 + 4); // maxEntries and its trim slack (64 / 16)
    }
    expect(t.get(7)?.argv).toEqual(['loadgen']);
    expect(t.get(8)).toBeUndefined();
    expect(t.get(1000)).toBeUndefined();
    expect(t.get(2999)).toBeDefined();
  });

  it('tells pid reuse apart by start time when live', () => {
    const procs = { 50: { ppid: 1, start: 100, cgroup: `4:memory:/docker/${CID}\n` } };
    const t = new ProcessTable({ reader: fakeProc(procs) });
    t.noteRecordPid(50, 0);
    expect(t.containerOf(50)?.containerId).toBe(CID);
    procs[50] = { ppid: 1, start: 200, cgroup: '0::/\n' };
    t.noteRecordPid(50, 100); // within recheckMs: cached, no /proc read
    expect(t.get(50)?.startTime).toBe(100);
    t.noteRecordPid(50, 5_000);
    expect(t.get(50)?.startTime).toBe(200);
    expect(t.containerOf(50)).toBeNull();
  });

  it('rechecks /proc once recheckMs passed, across the wrap of its 30-bit clock and after the clock went back', () => {
    const procs: Record<number, { ppid: number; start: number }> = { 51: { ppid: 1, start: 100 } };
    const t = new ProcessTable({ reader: fakeProc(procs) });
    const wrap = 2 ** 30; // the entry keeps the low 30 bits of the wall ms
    const now = 1_764_000_000_000 - (1_764_000_000_000 % wrap) + wrap - 200; // 200 ms before a wrap
    t.noteRecordPid(51, now);
    procs[51] = { ppid: 1, start: 200 };
    t.noteRecordPid(51, now + 500); // past the wrap, 500 ms later: still cached
    expect(t.get(51)?.startTime).toBe(100);
    t.noteRecordPid(51, now + 1_500); // 1.5 s later: read again, the reuse is seen
    expect(t.get(51)?.startTime).toBe(200);
    procs[51] = { ppid: 1, start: 300 };
    t.noteRecordPid(51, now - 60_000); // the wall clock was set back: taken as long ago, read again
    expect(t.get(51)?.startTime).toBe(300);
  });

  it('shares one frozen argv between processes that ran the same command, and never between different ones', () => {
    const t = new ProcessTable();
    t.observe(makeEvent({ process: { pid: 61, argv: ['curl', '-s', 'http://127.0.0.1:10255/pods'] } }));
    t.observe(makeEvent({ process: { pid: 62, argv: ['curl', '-s', 'http://127.0.0.1:10255/pods'] } }));
    const a = t.get(61)?.argv;
    expect(a).toEqual(['curl', '-s', 'http://127.0.0.1:10255/pods']);
    expect(t.get(62)?.argv).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    // Words whose NUL-joined text is the same (a replayed log's hex may decode to a NUL): kept apart.
    t.observe(makeEvent({ process: { pid: 63, argv: ['cat', 'a'] } }));
    t.observe(makeEvent({ process: { pid: 64, argv: ['cat\0a'] } }));
    expect(t.get(63)?.argv).toEqual(['cat', 'a']);
    expect(t.get(64)?.argv).toEqual(['cat\0a']);
    // A long argv is the entry's own, as before.
    const long = ['sh', '-c', 'x'.repeat(300)];
    t.observe(makeEvent({ process: { pid: 65, argv: long } }));
    t.observe(makeEvent({ process: { pid: 66, argv: [...long] } }));
    expect(t.get(66)?.argv).toEqual(long);
    expect(t.get(66)?.argv).not.toBe(t.get(65)?.argv);
  });

  it('in replay, a new exec of a known pid under another parent starts a fresh entry', () => {
    const t = new ProcessTable();
    t.observe(makeEvent({ process: { pid: 70, ppid: 5, argv: ['old'], cwd: '/old' } }));
    t.observe(makeEvent({ process: { pid: 70, ppid: 6, argv: ['new'], cwd: null } }));
    expect(t.get(70)?.cwd).toBeNull();
  });

  it('reads the cgroup early and falls back to the parent when the process is gone', () => {
    const procs: Record<number, { ppid: number; start: number; cgroup?: string }> = {
      300: { ppid: 1, start: 1, cgroup: `4:memory:/kubepods/besteffort/pod${UID}/${CID}\n` },
    };
    const t = new ProcessTable({ reader: fakeProc(procs) });
    t.noteRecordPid(300);
    // pid 301 exited before we could read it; we know its parent from its SYSCALL record.
    t.observe(makeEvent({ process: { pid: 301, ppid: 300, argv: ['cat', 'token'] } }));
    expect(t.containerOf(301)).toEqual({ containerId: CID, runtime: 'unknown', podUid: UID });
  });

  it('noteRecordPid also reads the parent from /proc', () => {
    const procs = { 400: { ppid: 399, start: 1 }, 399: { ppid: 1, start: 1, exe: '/usr/bin/bash' } };
    const t = new ProcessTable({ reader: fakeProc(procs) });
    t.noteRecordPid(400);
    expect(t.parents(400).map((e) => e.exe)).toEqual(['/usr/bin/bash']);
  });

  it('a storm of children does not cut a quiet parent off its ancestors: a missing ancestor is read again', () => {
    // shell 300 -> loop 500 -> 2,000 short-lived children (gone from /proc when their event is judged)
    const procs: Record<number, { ppid: number; start: number; exe?: string }> = {
      300: { ppid: 1, start: 10, exe: '/usr/bin/bash' },
      500: { ppid: 300, start: 20, exe: '/opt/loadgen' },
    };
    const reads: number[] = [];
    const reader = fakeProc(procs);
    const t = new ProcessTable({ reader: { ...reader, readStat: (pid) => (reads.push(pid), reader.readStat(pid)) }, maxEntries: 64 });
    t.noteRecordPid(500, 0);
    for (let i = 0; i < 2000; i++) t.observe(makeEvent({ timeMs: i, process: { pid: 10_000 + i, ppid: 500 } }));
    expect(t.get(300)).toBeUndefined(); // pushed out of the LRU by the children
    expect(t.parents(11_999, 16, 5000).map((e) => e.pid)).toEqual([500, 300]);
    expect(t.get(300)?.exe).toBe('/usr/bin/bash');
    // a dead ancestor is tried once per recheck interval, not on every event
    procs[600] = { ppid: 599, start: 30 };
    t.noteRecordPid(600, 5000);
    expect(reads.filter((p) => p === 599)).toEqual([599]); // noteRecordPid tried the parent
    reads.length = 0;
    for (let i = 0; i < 100; i++) t.parents(600, 16, 5000 + i);
    expect(reads.filter((p) => p === 599)).toEqual([]);
    for (let i = 0; i < 100; i++) t.parents(600, 16, 6500 + i);
    expect(reads.filter((p) => p === 599)).toEqual([599]);
    // a pid reused by a process younger than its supposed child is not taken for the parent
    procs[700] = { ppid: 698, start: 40 };
    procs[698] = { ppid: 1, start: 99, exe: '/usr/bin/impostor' };
    t.noteRecordPid(700, 9000);
    expect(t.parents(700, 16, 9000).map((e) => e.pid)).toEqual([]);
  });
});
