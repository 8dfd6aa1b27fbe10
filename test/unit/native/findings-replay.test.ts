/**
 * Findings-mode replay's two compact forms (src/cli/commands/replay-native.ts NativeFindingsReplay,
 * native/replay_events.cc): what the sink receives when it refuses the shortcut.
 *   - a run of notes repeating the previous note's process facts (`a`): when the process table no
 *     longer holds the entry, each note reaches onNote in full, with the facts of the note before it;
 *   - a repeat note (`R`): when the detector cannot decide it from its template, the event rebuilt for
 *     the full path has the log's own lines, byte for byte (node prefix, stamp, pid, a0..a3).
 * The differential test (test/integration/replay/findings-fast-path.test.ts) covers the usual case.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import type { AuditEvent } from '../../../src/audit/event';
import { NativeFindingsReplay, type FindingsSink } from '../../../src/cli/commands/replay-native';
import { nativeTriageFor } from '../../../src/daemon/native-triage';
import type { ProcessNote } from '../../../src/native/process-note';
import type { RepeatNote } from '../../../src/native/repeat-note';
import { createHostStages } from '../../../src/pipeline/host-stages';
import { tryLoadNative } from '../../helpers/native';

const { native, reason } = tryLoadNative();
if (reason) console.warn(`[skip] native findings replay: ${reason}`);

const spec = { ...nativeTriageFor(createHostStages({ host: 'lab-node', users: null }).detector).spec, repeats: true };

const SYSCALL_TAIL = 'auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=5';

function stamp(serial: number): string {
  return `audit(1795355800.${String(serial % 1000).padStart(3, '0')}:${serial})`;
}

/** A boring exec of sleep by `pid`. */
function sleepExec(serial: number, pid: number): string[] {
  const a = stamp(serial);
  return [
    `node=lab-node type=SYSCALL msg=${a}: arch=c000003e syscall=59 success=yes exit=0 a0=55835c72c7f0 a1=55835c711780 a2=55835c707c30 a3=e398afded058e9f4 items=2 ppid=10690 pid=${pid} ${SYSCALL_TAIL} comm="sleep" exe="/usr/bin/sleep" key="credwatch:rec"`,
    `node=lab-node type=EXECVE msg=${a}: argc=2 a0="sleep" a1="0.3"`,
    `node=lab-node type=CWD msg=${a}: cwd="/work/main"`,
    `node=lab-node type=PATH msg=${a}: item=0 name="/usr/bin/sleep" inode=260875 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`,
    `node=lab-node type=PROCTITLE msg=${a}: proctitle=736C65657000302E33`,
  ];
}

/** A boring open of /etc/hostname by `pid` (sleep). */
function hostnameOpen(serial: number, pid: number): string[] {
  const a = stamp(serial);
  return [
    `node=lab-node type=SYSCALL msg=${a}: arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffeec132f5c a2=0 a3=0 items=1 ppid=10690 pid=${pid} ${SYSCALL_TAIL} comm="sleep" exe="/usr/bin/sleep" key="credwatch:rec"`,
    `node=lab-node type=CWD msg=${a}: cwd="/work/main"`,
    `node=lab-node type=PATH msg=${a}: item=0 name="/etc/hostname" inode=3 dev=00:27 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0`,
    `node=lab-node type=PROCTITLE msg=${a}: proctitle=736C65657000302E33`,
  ];
}

/** A connect to the Docker API (127.0.0.1:2375) by curl `pid`: a rule fires on it. */
function dockerConnect(serial: number, pid: number, a1: string, node = 'lab-node'): string[] {
  const a = stamp(serial);
  return [
    `node=${node} type=SYSCALL msg=${a}: arch=c000003e syscall=42 success=no exit=-115 a0=6 a1=${a1} a2=10 a3=7ffe47e04724 items=0 ppid=10690 pid=${pid} ${SYSCALL_TAIL} comm="curl" exe="/usr/bin/curl" key="credwatch:rec"`,
    `node=${node} type=SOCKADDR msg=${a}: saddr=020009477F0000010000000000000000`,
    `node=${node} type=PROCTITLE msg=${a}: proctitle=6375726C`,
  ];
}

interface Seen {
  notes: ProcessNote[];
  again: { pid: number; timeMs: number; count: number }[];
  events: { ev: AuditEvent; template: number | undefined }[];
  repeats: RepeatNote[];
}

/** Replays `lines` into a sink that refuses both shortcuts (the entry is gone; the detector cannot decide). */
async function replayRefusing(lines: string[]): Promise<{ seen: Seen; replay: NativeFindingsReplay }> {
  const seen: Seen = { notes: [], again: [], events: [], repeats: [] };
  const sink: FindingsSink = {
    onEvent: (ev, template) => seen.events.push({ ev, template }),
    onRepeat: (note) => {
      seen.repeats.push(note);
      return false;
    },
    onNote: (note) => seen.notes.push(note),
    onNoteAgain: (pid, timeMs, count) => {
      seen.again.push({ pid, timeMs, count });
      return false;
    },
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-findings-replay-'));
  const file = path.join(dir, 'audit.log');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const replay = new NativeFindingsReplay(native!, spec, sink);
  await replay.file(file);
  replay.finish();
  return { seen, replay };
}

describe.skipIf(!native?.ReplayEventScanner)('findings replay: the compact forms, refused', () => {
  it('a run of notes of the same facts: each reaches onNote with those facts when the entry is gone', async () => {
    const { seen, replay } = await replayRefusing([...sleepExec(5001, 7001), ...hostnameOpen(5002, 7001), ...hostnameOpen(5003, 7001), ...hostnameOpen(5004, 7001)]);
    // One `a` run of three after the exec's note, at the run's latest time, refused, then given in full.
    expect(seen.again).toEqual([{ pid: 7001, timeMs: 1795355800004, count: 3 }]);
    expect(replay.notesAgain).toBe(3);
    expect(replay.badNotes).toBe(0);
    expect(seen.notes).toHaveLength(4);
    const [exec, ...opens] = seen.notes;
    expect(exec).toMatchObject({ kind: 'exec', pid: 7001, argv: ['sleep', '0.3'] });
    for (const o of opens) {
      expect(o.argv).toBeNull();
      expect({ pid: o.pid, ppid: o.ppid, uid: o.uid, auid: o.auid, tty: o.tty, exe: o.exe, comm: o.comm, cwd: o.cwd }).toEqual({ pid: 7001, ppid: 10690, uid: 0, auid: 1000, tty: null, exe: '/usr/bin/sleep', comm: 'sleep', cwd: '/work/main' });
      expect(o.timeMs).toBe(1795355800004);
    }
  });

  it('a repeat the detector cannot decide: rebuilt with the log lines byte for byte, under its template', async () => {
    const first = dockerConnect(6001, 8001, '55b8f31e7588');
    const again = dockerConnect(6002, 8002, '55b8f31e7aa0');
    const elsewhere = dockerConnect(6003, 8003, '55b8f31e7bb0', 'other-node');
    const { seen, replay } = await replayRefusing([...first, ...again, ...elsewhere]);
    // The second connect is a repeat of the first; the other node's is a template of its own.
    expect(seen.repeats.map((r) => [r.pid, r.serial, r.args[1]])).toEqual([[8002, 6002, '55b8f31e7aa0']]);
    expect(seen.events.map((e) => e.ev.records.map((r) => r.text))).toEqual([first, again, elsewhere]);
    const [t1, rebuilt, t2] = seen.events.map((e) => e.template);
    expect(t1).toBeDefined();
    expect(rebuilt).toBe(t1);
    expect(t2).toBeDefined();
    expect(t2).not.toBe(t1);
    expect(replay.repeatsExpanded).toBe(1);
    expect(replay.repeatsLost).toBe(0);
  });
});
