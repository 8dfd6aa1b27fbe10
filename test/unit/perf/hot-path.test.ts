/**
 * Behaviour kept by the hot-path optimisations of issue 10 (bench/): repeated credential reads by one
 * process keep one sequence mark (bounded memory, one join), wildcard-free globs still match exactly,
 * process-table entries keep values equal to what the events carried.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AuditEvent, Sockaddr } from '../../../src/audit/event';
import { createHostStages } from '../../../src/pipeline/host-stages';
import { globMatcher } from '../../../src/detect/match';
import { ProcessTable, ownString } from '../../../src/enrich/process-table';
import { makeEvent } from '../enrich/helpers';

const T0 = 1_800_000_000_000;
let serial = 5000;
function stamp(dtMs: number): Pick<AuditEvent, 'id' | 'time' | 'timeMs' | 'serial'> {
  const timeMs = T0 + dtMs;
  serial++;
  return { id: `${(timeMs / 1000).toFixed(3)}:${serial}`, time: new Date(timeMs).toISOString(), timeMs, serial };
}
function exec(pid: number, ppid: number, argv: string[], exe: string, dt: number): AuditEvent {
  return makeEvent({
    ...stamp(dt),
    syscall: { arch: 'x86_64', nr: 59, name: 'execve', success: true, exit: 0 },
    process: { pid, ppid, argv, exe, comm: path.basename(exe), cwd: '/root' },
  });
}
function open(pid: number, ppid: number, name: string, exe: string, dt: number): AuditEvent {
  return makeEvent({
    ...stamp(dt),
    syscall: { arch: 'x86_64', nr: 257, name: 'openat', success: true, exit: 3 },
    process: { pid, ppid, exe, comm: path.basename(exe), cwd: '/' },
    paths: [{ name, nametype: 'NORMAL', inode: 3, mode: '0100644' }],
  });
}
function connect(pid: number, ppid: number, sockaddr: Sockaddr, exe: string, dt: number): AuditEvent {
  return makeEvent({
    ...stamp(dt),
    syscall: { arch: 'x86_64', nr: 42, name: 'connect', success: false, exit: -115 },
    process: { pid, ppid, exe, comm: path.basename(exe) },
    sockaddr,
  });
}

const NODE_TOKEN = '/var/lib/kubelet/pods/7d3f4c2a-1b5e-4c8d-9f0a-2e6b8c4d1a35/volumes/kubernetes.io~projected/kube-api-access-q7x2m/token';
const apiserver: Sockaddr = { family: 'inet', addr: '10.96.0.1', port: 443, path: null };

describe('sequence marks under repeated reads', () => {
  it('a process reading the token 5,000 times then calling the API gives one sequence finding with one read', () => {
    const d = createHostStages({ host: 'node-a', users: null });
    d.onAuditEvent(exec(70, 1, ['bash'], '/bin/bash', 0));
    for (let i = 0; i < 5000; i++) d.onAuditEvent(open(71, 70, NODE_TOKEN, '/usr/bin/cat', i));
    const out = d.onAuditEvent(connect(72, 70, apiserver, '/usr/bin/curl', 6000));
    const seq = out.filter((f) => f.rule === 'seq-credential-read-then-use');
    expect(seq).toHaveLength(1);
    // the read and the follow-up: one first, not 5,000
    expect(seq[0]?.evidence).toHaveLength(2);
  });

  it('the window runs from the latest read: a read long ago refreshed by a recent one still joins', () => {
    const d = createHostStages({ host: 'node-a', users: null });
    d.onAuditEvent(exec(80, 1, ['bash'], '/bin/bash', 0));
    d.onAuditEvent(open(81, 80, NODE_TOKEN, '/usr/bin/cat', 0));
    d.onAuditEvent(open(81, 80, NODE_TOKEN, '/usr/bin/cat', 100_000));
    const out = d.onAuditEvent(connect(82, 80, apiserver, '/usr/bin/curl', 101_000));
    expect(out.map((f) => f.rule)).toContain('seq-credential-read-then-use');
  });

  it('a read after a join starts a new mark, so a later use joins again', () => {
    // About the sequence marks, so per-rule findings (incidents: false): each join is its own hit.
    const d = createHostStages({ host: 'node-a', users: null, incidents: false });
    d.onAuditEvent(exec(90, 1, ['bash'], '/bin/bash', 0));
    d.onAuditEvent(open(91, 90, NODE_TOKEN, '/usr/bin/cat', 0));
    expect(d.onAuditEvent(connect(92, 90, apiserver, '/usr/bin/curl', 1000)).map((f) => f.rule)).toContain('seq-credential-read-then-use');
    d.onAuditEvent(open(91, 90, NODE_TOKEN, '/usr/bin/cat', 2000));
    expect(d.onAuditEvent(connect(93, 90, apiserver, '/usr/bin/curl', 3000)).map((f) => f.rule)).toContain('seq-credential-read-then-use');
  });

  it('grouped, the second join of the same tree and endpoint updates the incident the first opened', () => {
    const d = createHostStages({ host: 'node-a', users: null });
    d.onAuditEvent(exec(90, 1, ['bash'], '/bin/bash', 0));
    d.onAuditEvent(open(91, 90, NODE_TOKEN, '/usr/bin/cat', 0));
    const [first] = d.onAuditEvent(connect(92, 90, apiserver, '/usr/bin/curl', 1000)).filter((f) => f.rules?.includes('seq-credential-read-then-use'));
    d.onAuditEvent(open(91, 90, NODE_TOKEN, '/usr/bin/cat', 2000));
    // Two seconds after the last emission the update goes out with the event (else at the next tick).
    const later = [...d.onAuditEvent(connect(93, 90, apiserver, '/usr/bin/curl', 3000)), ...d.tick(T0 + 4000)];
    const update = later.find((f) => f.id === first?.id);
    expect(update?.revision).toBeGreaterThan(first?.revision ?? 0);
    expect(update?.count).toBe(2);
  });
});

describe('globMatcher', () => {
  it('matches plain names by basename, plain paths exactly, and wildcards as before', () => {
    const m = globMatcher(['curl', '/usr/local/bin/kubectl', 'python3*', '/opt/*/bin/tool', 'a.b']);
    expect(m('/usr/bin/curl')).toBe(true);
    expect(m('curl')).toBe(true);
    expect(m('/usr/bin/curl2')).toBe(false);
    expect(m('/usr/local/bin/kubectl')).toBe(true);
    expect(m('/usr/bin/kubectl')).toBe(false);
    expect(m('/usr/bin/python3.11')).toBe(true);
    expect(m('/opt/x/bin/tool')).toBe(true);
    expect(m('/opt/x/y/bin/tool')).toBe(false);
    expect(m('/bin/aXb')).toBe(false); // '.' is literal
    expect(m(null)).toBe(false);
  });
});

describe('process table strings', () => {
  it('ownString returns an equal string; entries hold the values the events carried', () => {
    const record = `type=SYSCALL msg=audit(1.0:1): exe="/usr/bin/true-with-a-long-name" ${'x'.repeat(500)}`;
    const exe = record.slice(record.indexOf('"') + 1, record.indexOf('" '));
    expect(ownString(exe)).toBe('/usr/bin/true-with-a-long-name');
    expect(ownString('short')).toBe('short');
    const t = new ProcessTable();
    t.observe(makeEvent({ ...stamp(0), syscall: { arch: 'x86_64', nr: 59, name: 'execve', success: true, exit: 0 }, process: { pid: 5, ppid: 1, exe, argv: [exe, 'credwatch-loadgen-arg'], comm: 'true', cwd: '/some/long/working/dir' } }));
    const e = t.get(5);
    expect(e?.exe).toBe(exe);
    expect(e?.argv).toEqual([exe, 'credwatch-loadgen-arg']);
    expect(e?.cwd).toBe('/some/long/working/dir');
  });
});
