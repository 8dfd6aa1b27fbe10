/**
 * The reader thread's /proc reads per SYSCALL record (native/proc_snapshot.h), through the addon's test
 * hook against a fake /proc tree. The kill(pid, 0) probe that skips a gone pid's /proc reads is faked:
 * ESRCH must skip the reads, EPERM (alive, not ours to signal) must not, and without a fake a tree that
 * is not our own /proc is never probed (kill() answers for our pid namespace only).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNative } from '../../../src/native/binding';

const native = loadNative();
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-fakeproc-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function fakeProcess(pid: number, ppid: number, start: number, comm: string): void {
  const dir = path.join(root, String(pid));
  fs.mkdirSync(dir, { recursive: true });
  // Fields 3.. after the comm: state, ppid, then up to field 22 (start time).
  const after = ['S', String(ppid), ...Array.from({ length: 17 }, () => '0'), String(start), '0'];
  fs.writeFileSync(path.join(dir, 'stat'), `${pid} (${comm}) ${after.join(' ')}\n`);
  fs.writeFileSync(path.join(dir, 'cgroup'), `0::/user.slice/${comm}\n`);
}

const syscall = (pid: number, serial: number): string => `audit(1795355795.042:${serial}): arch=c000003e syscall=42 success=no exit=-2 a0=3 a1=7ffe a2=6e a3=0 items=0 ppid=1 pid=${pid} auid=0 uid=0 comm="x"`;
const pidsOf = (snapshots: string[]): number[] => snapshots.map((s) => Number(s.split('\0')[0]));

// Pids near the top of the 22-bit pid space: no process of this machine has them (checked below), so a
// real kill() would call them gone.
const A = 4_194_001;
const B = 4_194_002;
const C = 4_194_003;
fakeProcess(A, 1, 5000, 'alive');
fakeProcess(B, 1, 5001, 'gone-by-now');
fakeProcess(C, 1, 5002, 'not-ours');

function existsHere(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

describe('native /proc snapshots and the kill(pid, 0) probe', () => {
  it('a pid the probe reports gone (ESRCH) is not read, though its /proc files still exist; EPERM is read', () => {
    const r = native.procSnapshots!(root, [syscall(A, 1), syscall(B, 2), syscall(C, 3)], { gone: [B], denied: [C] });
    expect(r.probed).toEqual([A, B, C]);
    expect(pidsOf(r.snapshots)).toEqual([A, C]);
    expect(r.skippedGone).toBe(1);
    // What was read is the fake tree's: pid, ppid, start time, comm, cgroup.
    expect(r.snapshots[0]).toBe(`${A}\u00001\u00005000\u0000alive\u00000::/user.slice/alive\n`);
  });

  it('a pid seen within the recheck interval is neither probed nor read again', () => {
    const r = native.procSnapshots!(root, [syscall(A, 1), syscall(A, 2)], {});
    expect(r.probed).toEqual([A]);
    expect(pidsOf(r.snapshots)).toEqual([A]);
  });

  it('without a fake, a tree that is not our own /proc is read for every pid and kill() is never asked', () => {
    expect([A, B, C].filter(existsHere)).toEqual([]); // so a kill() probe would have skipped all three
    const r = native.procSnapshots!(root, [syscall(A, 1), syscall(B, 2), syscall(C, 3)]);
    expect(pidsOf(r.snapshots)).toEqual([A, B, C]);
    expect(r.skippedGone).toBe(0);
  });
});
