/**
 * The reader thread's triage (native/triage.cc) against TypeScript, on every recorded exec and connect
 * event of the fixtures: the C++ verdict must never be more permissive than the reference verdict
 * (src/detect/triage-spec.ts triageInteresting), a process note must carry exactly what the TypeScript
 * event builder makes of the same records, and events it does not summarize must come out byte for
 * byte as they went in. Plus the shapes a live kernel rarely produces (chunked arguments, a record
 * before its SYSCALL, no EOE, NUL in a hex value). Runs through the addon's triageRecords() test hook:
 * no socket, no root.
 */
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { recordTypeNumber } from '../../../src/audit/record-types';
import { nativeTriageFor } from '../../../src/daemon/native-triage';
import { createHostStages } from '../../../src/pipeline/host-stages';
import { triageInteresting, triageSummaryOf } from '../../../src/detect/triage-spec';
import type { NativeTriageSpec } from '../../../src/native/types';
import { PROCESS_NOTE_TYPE, parseProcessNote } from '../../../src/native/process-note';
import { FIXTURES, fixtureFiles, readLogEvents } from '../../helpers/fixture-events';
import { tryLoadNative } from '../../helpers/native';

const { native, reason } = tryLoadNative();
if (reason) console.warn(`[skip] native triage: ${reason}`);

const compiled = nativeTriageFor(createHostStages({ host: 'lab-node', users: null }).detector);
const spec: NativeTriageSpec = compiled.spec;
/** The same spec as the reference verdict takes it. */
const referenceSpec = { ...compiled.spec, reasons: compiled.reasons };

interface NetlinkRecord {
  type: number;
  text: string;
}

/** A log line's record as the kernel sent it over netlink: the numeric type and the text from audit(. */
function asNetlink(rec: { type: string; text: string }): NetlinkRecord {
  const at = rec.text.indexOf('msg=audit(');
  const type = recordTypeNumber(rec.type) ?? Number(/^UNKNOWN\[(\d+)\]$/.exec(rec.type)?.[1] ?? NaN);
  return { type, text: at >= 0 ? rec.text.slice(at + 4) : rec.text };
}

/** Debian's auditd does not log EOE; the kernel always sends it, and the triage waits for it. */
function withEoe(records: NetlinkRecord[]): NetlinkRecord[] {
  if (records.some((r) => r.type === 1320)) return records;
  const stamp = /^audit\([0-9.:]+\):/.exec(records[0]!.text)?.[0] ?? 'audit(0.000:0):';
  return [...records, { type: 1320, text: `${stamp} ` }];
}

describe.skipIf(native === null)('native triage on every recorded exec and connect event', () => {
  const problems: string[] = [];
  const tally = { events: 0, summarized: 0, nativeStricter: 0, findings: 0 };

  beforeAll(async () => {
    const n = native!;
    for (const file of fixtureFiles(/\.(log|log\.gz)$/)) {
      const detector = createHostStages({ host: 'lab-node', users: null });
      const name = path.relative(FIXTURES, file);
      for (const ev of await readLogEvents(file)) {
        const found = detector.onAuditEvent(ev).length > 0;
        const summary = triageSummaryOf(ev);
        if (!summary || ev.incomplete) continue;
        tally.events++;
        if (found) tally.findings++;
        const input = withEoe(ev.records.map(asNetlink));
        const out = n.triageRecords(spec, input);
        const summarized = out.items.length === 1 && out.items[0]!.type === PROCESS_NOTE_TYPE;
        const reference = triageInteresting(referenceSpec, summary);
        if (summarized) {
          tally.summarized++;
          if (reference) problems.push(`${name} ${ev.id}: summarized, but the reference says a rule may care`);
          if (found) problems.push(`${name} ${ev.id}: summarized, but the detector raised a finding on it`);
          const note = parseProcessNote(out.items[0]!.text);
          const p = ev.process!;
          const want = {
            kind: summary.kind,
            serial: ev.serial,
            timeMs: ev.timeMs,
            recordTypes: input.map((r) => r.type),
            pid: p.pid,
            ppid: p.ppid,
            uid: p.uid,
            auid: p.auid,
            tty: p.tty,
            exe: p.exe,
            comm: p.comm,
            cwd: p.cwd,
            argv: summary.kind === 'exec' ? p.argv : null,
          };
          if (JSON.stringify(note) !== JSON.stringify(want)) {
            problems.push(`${name} ${ev.id}: note ${JSON.stringify(note)} != event ${JSON.stringify(want)}`);
          }
          if (out.items[0]!.count !== input.length) problems.push(`${name} ${ev.id}: note counts ${out.items[0]!.count} records, not ${input.length}`);
        } else {
          if (!reference) tally.nativeStricter++;
          const same = out.items.length === input.length && out.items.every((it, i) => it.type === input[i]!.type && it.text === input[i]!.text && it.count === 1);
          if (!same) problems.push(`${name} ${ev.id}: records not passed through unchanged`);
        }
      }
    }
    console.log(`native triage over the fixtures: ${JSON.stringify(tally)}`);
  }, 120_000);

  it('never summarizes an event the reference verdict or the detector says a rule may care about', () => {
    expect(problems.filter((p) => !p.includes('note ') && !p.includes('unchanged') && !p.includes('counts'))).toEqual([]);
  });

  it('writes notes whose fields equal what the TypeScript event builder makes of the same records', () => {
    expect(problems.filter((p) => p.includes('note ') || p.includes('counts'))).toEqual([]);
    expect(tally.summarized).toBeGreaterThan(1000);
  });

  it('passes every other event through byte for byte, in order', () => {
    expect(problems.filter((p) => p.includes('unchanged'))).toEqual([]);
  });

  it('is rarely stricter than the reference (each such event costs the full path)', () => {
    // Known stricter cases: shapes the C++ does not parse (chunked or split arguments).
    expect(tally.nativeStricter).toBeLessThan(tally.events / 100);
  });
});

describe.skipIf(native === null)('native triage on shapes a live kernel rarely produces', () => {
  const stamp = 'audit(1700000000.123:77)';
  const syscall = (nr: number, extra = ''): NetlinkRecord => ({
    type: 1300,
    text: `${stamp}: arch=c000003e syscall=${nr} success=yes exit=0 items=2 ppid=10 pid=11 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="true" exe="/usr/bin/true"${extra} key="credwatch:exec"`,
  });
  const rec = (type: number, body: string): NetlinkRecord => ({ type, text: `${stamp}: ${body}` });
  const eoe = rec(1320, '');
  const run = (records: NetlinkRecord[]) => native!.triageRecords(spec, records);
  const passedUnchanged = (records: NetlinkRecord[]): void => {
    const out = run(records);
    expect(out.items.map((i) => ({ type: i.type, text: i.text }))).toEqual(records);
  };

  it('summarizes a plain exec of /usr/bin/true into one note standing for all its records', () => {
    const records = [syscall(59), rec(1309, 'argc=1 a0="true"'), rec(1307, 'cwd="/"'), rec(1302, 'item=0 name="/usr/bin/true"'), eoe];
    const out = run(records);
    expect(out.items).toHaveLength(1);
    expect(out.items[0]!.count).toBe(5);
    expect(parseProcessNote(out.items[0]!.text)).toMatchObject({ kind: 'exec', serial: 77, timeMs: 1700000000123, pid: 11, ppid: 10, auid: null, tty: null, argv: ['true'], cwd: '/' });
  });

  it('decodes hex arguments exactly (spaces, quotes, UTF-8)', () => {
    const arg = 'a "b" ü';
    const records = [syscall(59), rec(1309, `argc=2 a0="echo" a1=${Buffer.from(arg).toString('hex').toUpperCase()}`), rec(1307, 'cwd="/"'), eoe];
    expect(parseProcessNote(run(records).items[0]!.text)?.argv).toEqual(['echo', arg]);
  });

  it('passes an exec whose argv matches a rule literal (kubectl get secrets) unchanged', () => {
    passedUnchanged([syscall(59), rec(1309, 'argc=3 a0="kubectl" a1="get" a2="secrets"'), rec(1307, 'cwd="/"'), eoe]);
  });

  it('finds argv literals anywhere in the command line, whatever their case, length or shared first bytes', () => {
    // One pair of first bytes ("--") shared by several literals, a one-byte literal and a literal in capitals.
    const lits = { ...spec, execPrograms: [], execExes: [], execArgvLiterals: ['--token', '--kubeconfig=', '--as', '%', 'SeCrEtS'] };
    const exec = (...argv: string[]): boolean => {
      const body = `argc=${argv.length} ` + argv.map((a, i) => `a${i}=${Buffer.from(a).toString('hex').toUpperCase()}`).join(' ');
      const out = native!.triageRecords(lits, [syscall(59), rec(1309, body), rec(1307, 'cwd="/"'), eoe]);
      return out.items[0]!.type !== PROCESS_NOTE_TYPE; // passed: a rule may care
    };
    expect(exec('tool', '--as')).toBe(true); // at the very end of the text
    expect(exec('tool', '--a')).toBe(false); // a prefix of a literal is not the literal
    expect(exec('tool', '--kubeconfig=/x')).toBe(true);
    expect(exec('tool', '--kubeconfig')).toBe(false);
    expect(exec('tool', '---TOKEN')).toBe(true); // upper case in the text, after a false start
    expect(exec('tool', '100%')).toBe(true);
    expect(exec('tool', 'get', 'SECRETS')).toBe(true); // the spec's literal lower-cased, the text too
    expect(exec('tool', 'get', 'secret')).toBe(false);
    expect(exec('-')).toBe(false); // one byte of a pair at the end
  });

  it('passes chunked arguments (a1_len, a1[0]) unchanged: TypeScript rebuilds those', () => {
    passedUnchanged([syscall(59), rec(1309, 'argc=2 a0="cat" a1_len=4 a1[0]=74727565'), rec(1307, 'cwd="/"'), eoe]);
  });

  it('passes an exec without EXECVE (a failed execve keeps the old argv) unchanged', () => {
    passedUnchanged([syscall(59), rec(1307, 'cwd="/"'), eoe]);
  });

  it('passes a hex value holding a NUL byte unchanged (the note separates fields with NUL)', () => {
    passedUnchanged([syscall(59), rec(1309, 'argc=1 a0=610062'), rec(1307, 'cwd="/"'), eoe]);
  });

  it('passes an event with a record type it does not know (AVC) unchanged', () => {
    passedUnchanged([syscall(59), rec(1400, 'avc: denied { read }'), rec(1309, 'argc=1 a0="true"'), eoe]);
  });

  it('passes the SYSCALL of a serial whose earlier record already went through', () => {
    const avc = rec(1400, 'avc: denied { read }');
    const rest = [syscall(59), rec(1309, 'argc=1 a0="true"'), rec(1307, 'cwd="/"'), eoe];
    passedUnchanged([avc, ...rest]);
  });

  it('releases an event with no EOE unchanged at the end', () => {
    passedUnchanged([syscall(59), rec(1309, 'argc=1 a0="true"')]);
  });

  // io_uring (issue 16): a URINGOP record can ride on any syscall's event (task work runs on the way
  // back to user space), before or after the SYSCALL record; the event is the io_uring op's, so the
  // reader thread must never summarize it away.
  const uringop = (op: number) => rec(1336, `uring_op=${op} success=yes exit=0 items=0 ppid=10 pid=11 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 key="credwatch:connect"`);
  it('passes an exec or connect event that also carries a URINGOP record unchanged (io_uring op in task work)', () => {
    const sock = '0100' + Buffer.from('/tmp/nothing').toString('hex').toUpperCase();
    passedUnchanged([syscall(42), uringop(16), rec(1306, `saddr=${sock}`), eoe]);
    passedUnchanged([syscall(59), rec(1309, 'argc=1 a0="true"'), uringop(18), rec(1307, 'cwd="/"'), eoe]);
  });

  it('passes a URINGOP-first event (io_uring_enter inline completion) and a URINGOP-only worker event unchanged', () => {
    passedUnchanged([uringop(18), syscall(426), rec(1307, 'cwd="/"'), rec(1302, 'item=0 name="/x" inode=5 dev=00:2a nametype=NORMAL'), eoe]);
    passedUnchanged([uringop(250), eoe]);
  });

  it('passes other syscalls (openat on a watched path) unchanged', () => {
    passedUnchanged([syscall(257), rec(1307, 'cwd="/"'), rec(1302, 'item=0 name="/var/run/secrets/kubernetes.io/serviceaccount/token"'), eoe]);
  });

  it('summarizes a connect to an unwatched unix path and passes one to docker.sock', () => {
    const sock = (p: string) => '0100' + Buffer.from(p).toString('hex').toUpperCase();
    const boring = run([syscall(42), rec(1306, `saddr=${sock('/tmp/nothing')}`), eoe]);
    expect(boring.items).toHaveLength(1);
    expect(parseProcessNote(boring.items[0]!.text)).toMatchObject({ kind: 'connect', argv: null });
    passedUnchanged([syscall(42), rec(1306, `saddr=${sock('/var/run/docker.sock')}`), eoe]);
  });

  it('keeps records of other events flowing while one event is held, and interleaved events apart', () => {
    const other = { type: 1112, text: 'audit(1700000000.200:78): pid=5 uid=0 msg=\'op=login\'' };
    const records = [syscall(59), other, rec(1309, 'argc=1 a0="true"'), rec(1307, 'cwd="/"'), eoe];
    const out = run(records);
    expect(out.items.map((i) => i.type)).toEqual([1112, PROCESS_NOTE_TYPE]);
  });

  it('rejects a malformed spec with a message naming the field', () => {
    expect(() => native!.triageRecords({ ...spec, connectPorts: [70000] }, [])).toThrow(/connectPorts/);
    expect(() => native!.triageRecords({ ...spec, execAll: 'yes' as unknown as boolean }, [])).toThrow(/execAll/);
  });
});
