import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AuditEvent, Sockaddr } from '../../../src/audit/event';
import { findingId } from '../../../src/detect/engine';
import { createHostStages } from '../../../src/pipeline/host-stages';
import { ProcessTable } from '../../../src/enrich/process-table';
import type { ProcReader } from '../../../src/enrich/proc-reader';
import { makeEvent } from '../enrich/helpers';

const T0 = 1_800_000_000_000;
let serial = 100;
function stamp(dtMs: number): Pick<AuditEvent, 'id' | 'time' | 'timeMs' | 'serial'> {
  const timeMs = T0 + dtMs;
  serial++;
  return { id: `${(timeMs / 1000).toFixed(3)}:${serial}`, time: new Date(timeMs).toISOString(), timeMs, serial };
}

function exec(pid: number, ppid: number, argv: string[], exe: string, dt = 0, extra: Record<string, unknown> = {}): AuditEvent {
  return makeEvent({
    ...stamp(dt),
    syscall: { arch: 'x86_64', nr: 59, name: 'execve', success: true, exit: 0 },
    process: { pid, ppid, argv, exe, comm: path.basename(exe), cwd: '/root', ...extra },
    records: [{ type: 'EXECVE', text: `audit(1.0:1): argc=${argv.length} ${argv.map((a, i) => `a${i}="${a}"`).join(' ')}` }],
  });
}

function open(pid: number, ppid: number, name: string, exe: string, dt = 0, cwd = '/'): AuditEvent {
  return makeEvent({
    ...stamp(dt),
    syscall: { arch: 'x86_64', nr: 257, name: 'openat', success: true, exit: 3 },
    process: { pid, ppid, exe, comm: path.basename(exe), cwd },
    paths: [{ name, nametype: 'NORMAL', inode: 3, mode: '0100644' }],
  });
}

function connect(pid: number, ppid: number, sockaddr: Sockaddr, exe: string, dt = 0): AuditEvent {
  return makeEvent({
    ...stamp(dt),
    syscall: { arch: 'x86_64', nr: 42, name: 'connect', success: false, exit: -115 },
    process: { pid, ppid, exe, comm: path.basename(exe) },
    sockaddr,
  });
}

const TOKEN = '/run/secrets/kubernetes.io/serviceaccount/token';
const NODE_TOKEN = '/var/lib/kubelet/pods/7d3f4c2a-1b5e-4c8d-9f0a-2e6b8c4d1a35/volumes/kubernetes.io~projected/kube-api-access-q7x2m/token';
// These tests are about the rules, one finding per rule hit: they ask for ungrouped findings
// (incidents: false). How hits become one incident per behaviour is test/unit/detect/incidents.test.ts.
const detector = (opts: Partial<Parameters<typeof createHostStages>[0]> = {}) => createHostStages({ host: 'node-a', users: null, incidents: false, ...opts });

describe('scoring', () => {
  it('adds indicator weights the way the reference SPL adds its risk score', () => {
    const d = detector();
    const [a] = d.onAuditEvent(exec(10, 1, ['kubectl', 'get', 'secrets'], '/usr/bin/kubectl'));
    const [b] = d.onAuditEvent(exec(11, 1, ['kubectl', 'get', 'secrets', '--all-namespaces', '-o', 'yaml'], '/usr/bin/kubectl'));
    expect(a?.rule).toBe('h5-kubectl-secret-access');
    expect(a?.score).toBe(2);
    expect(b?.score).toBe(4);
    expect(b?.indicators).toEqual(['kubectl-secret-verb', 'all-namespaces', 'dump-output']);
    expect(b?.severity).toBe('critical'); // escalate at score 4
    expect(d.onAuditEvent(exec(12, 1, ['kubectl', 'get', 'pods'], '/usr/bin/kubectl'))).toEqual([]);
  });

  it('needs the reader identity for a token open: a client library reading its own token is quiet', () => {
    const d = detector();
    expect(d.onAuditEvent(open(20, 1, TOKEN, '/app/server'))).toEqual([]);
    const [f] = d.onAuditEvent(open(21, 1, TOKEN, '/usr/bin/cat'));
    expect(f?.rule).toBe('h1-sa-token-read');
    expect(f?.covers).toEqual(['H1']);
    expect(f?.mitre).toContain('T1552.007');
  });

  it('a program new among the token readers of a pod scores: the workload that always reads it does not', () => {
    const cid = 'd'.repeat(64);
    const reader: ProcReader = {
      readStat: () => ({ ppid: 1, startTime: 1, comm: 'x' }),
      readCgroup: () => `4:memory:/docker/${cid}\n`,
      readExe: () => null,
      readCmdline: () => null,
      readCwd: () => null,
      readLoginUid: () => null,
    };
    const table = new ProcessTable({ reader });
    for (const pid of [301, 302, 303]) table.noteRecordPid(pid);
    const d = detector({ processTable: table });
    expect(d.onAuditEvent(open(301, 1, TOKEN, '/app/server', 0))).toEqual([]);
    expect(d.onAuditEvent(open(301, 1, TOKEN, '/app/server', 60_000))).toEqual([]);
    const [f] = d.onAuditEvent(open(302, 1, TOKEN, '/app/helper', 61_000));
    expect(f?.indicators).toEqual(['sa-token-open', 'new-reader-in-pod']);
    expect(d.onAuditEvent(open(303, 1, TOKEN, '/app/server', 62_000))).toEqual([]);
  });

  it('resolves relative PATH names against CWD (cd into the token dir, then cat token)', () => {
    const d = detector();
    const [f] = d.onAuditEvent(open(22, 1, 'token', '/bin/busybox', 0, '/var/run/secrets/kubernetes.io/serviceaccount'));
    expect(f?.rule).toBe('h1-sa-token-read');
  });

  it('matches argv[0] as well as the exe (a re-exec named kubectl, as Peirates does)', () => {
    const [f] = detector().onAuditEvent(exec(23, 1, ['kubectl', 'get', 'secret', 'x', '-o', 'json'], '/tmp/peirates'));
    expect(f?.rule).toBe('h5-kubectl-secret-access');
  });
});

describe('rows without a recorded fixture (hand-built events)', () => {
  it('H4: admin kubeconfig read by cat; kubectl reading its own config is quiet', () => {
    const d = detector();
    expect(d.onAuditEvent(open(200, 1, '/etc/kubernetes/admin.conf', '/usr/bin/cat'))[0]?.rule).toBe('h4-node-credential-read');
    expect(d.onAuditEvent(open(201, 1, '/root/.kube/config', '/usr/bin/kubectl'))).toEqual([]);
    const [key] = d.onAuditEvent(open(202, 1, '/etc/kubernetes/pki/ca.key', '/usr/bin/python3.11'));
    expect(key?.severity).toBe('critical');
  });

  it('H12: IMDS credential URL (medium, lower than the core rows)', () => {
    const [f] = detector().onAuditEvent(exec(210, 1, ['curl', 'http://169.254.169.254/latest/meta-data/iam/security-credentials/role'], '/usr/bin/curl'));
    expect(f?.rule).toBe('h12-cloud-metadata-credentials');
    expect(f?.severity).toBe('medium');
  });

  it('H13: another process environ on a command line (low)', () => {
    const [f] = detector().onAuditEvent(exec(220, 1, ['cat', '/proc/1/environ'], '/usr/bin/cat'));
    expect(f?.rule).toBe('h13-proc-environ-read');
    expect(f?.severity).toBe('low');
  });

  it('H14: tar cf - started by runc without a tty (kubectl cp), escalated for a secrets path', () => {
    const d = detector();
    d.onAuditEvent(exec(230, 1, ['runc', '--root', '/run/containerd/runc/k8s.io', 'exec', '--process', '/tmp/p.json', 'c'], '/usr/bin/runc'));
    const secrets = d.onAuditEvent(exec(231, 230, ['tar', 'cf', '-', '/var/run/secrets/kubernetes.io/serviceaccount'], '/bin/tar'));
    const data = d.onAuditEvent(exec(232, 230, ['tar', 'cf', '-', '/data'], '/bin/tar'));
    const h14 = [...secrets, ...data].filter((x) => x.rule === 'h14-kubectl-cp-tar');
    expect(h14.map((x) => x.severity)).toEqual(['medium', 'low']);
    expect(secrets.map((x) => x.rule)).toContain('h2-sa-token-path-in-argv');
  });
});

describe('exclusions and allowlist', () => {
  it('drops excluded readers and counts them', () => {
    const d = detector();
    expect(d.onAuditEvent(open(30, 1, NODE_TOKEN, '/usr/local/bin/kubelet'))).toEqual([]);
    expect(d.detector.stats.excluded).toBe(1);
    expect(d.onAuditEvent(open(31, 1, NODE_TOKEN, '/usr/bin/cat'))[0]?.rule).toBe('h3-kubelet-pod-volume-harvest');
  });

  it('applies the operator allowlist by exe, auid, per rule', () => {
    const d = detector({
      allow: [
        { exe: ['/opt/backup/bin/*'], rules: ['h3-kubelet-pod-volume-harvest'] },
        { auid: [1001], rules: ['h5-kubectl-secret-access'] },
      ],
    });
    expect(d.onAuditEvent(open(32, 1, NODE_TOKEN, '/opt/backup/bin/cat'))).toEqual([]);
    expect(d.onAuditEvent(exec(33, 1, ['kubectl', 'get', 'secrets'], '/usr/bin/kubectl', 0, { auid: 1001 }))).toEqual([]);
    expect(d.onAuditEvent(exec(34, 1, ['kubectl', 'get', 'secrets'], '/usr/bin/kubectl', 0, { auid: 1002 }))).toHaveLength(1);
    expect(d.detector.stats.allowlisted).toBe(2);
  });

  it('allowlists by container id', () => {
    const cid = 'a'.repeat(64);
    const reader: ProcReader = {
      readStat: () => ({ ppid: 1, startTime: 5, comm: 'cat' }),
      readCgroup: () => `4:memory:/docker/${cid}\n`,
      readExe: () => null,
      readCmdline: () => null,
      readCwd: () => null,
      readLoginUid: () => null,
    };
    const table = new ProcessTable({ reader });
    table.noteRecordPid(35);
    const d = detector({ processTable: table, allow: [{ container_id: ['aaaaaaaaaaaa'] }] });
    expect(d.onAuditEvent(open(35, 1, TOKEN, '/usr/bin/cat'))).toEqual([]);
  });
});

describe('findings', () => {
  it('have stable ids: same rule, host and events give the same id', () => {
    const ev = exec(40, 1, ['kubectl', 'get', 'secrets'], '/usr/bin/kubectl');
    const a = detector().onAuditEvent(ev)[0];
    const b = detector().onAuditEvent(ev)[0];
    const c = detector({ host: 'node-b' }).onAuditEvent(ev)[0];
    expect(a?.id).toBe(b?.id);
    expect(a?.id).toBe(findingId('h5-kubectl-secret-access', 'node-a', [ev.id]));
    expect(c?.id).not.toBe(a?.id);
    expect(a?.id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('carry process, parents, interactive, container with pod uid (live cgroup), evidence', () => {
    const cid = 'b'.repeat(64);
    const uid = '4407d6d9-5a5e-4394-8ac2-54145e3d7f7f';
    const reader: ProcReader = {
      readStat: (pid) => ({ ppid: pid === 51 ? 50 : 1, startTime: 9, comm: 'x' }),
      readCgroup: () => `4:memory:/kubepods/besteffort/pod${uid}/${cid}\n0::/kubepods/besteffort/pod${uid}/${cid}\n`,
      readExe: () => '/bin/sh',
      readCmdline: () => ['sh'],
      readCwd: () => '/',
      readLoginUid: () => null,
    };
    const table = new ProcessTable({ reader });
    table.noteRecordPid(51);
    const d = detector({ processTable: table });
    const [f] = d.onAuditEvent(exec(51, 50, ['cat', TOKEN], '/bin/cat', 0, { tty: 'pts0', auid: 1000 }));
    expect(f?.rule).toBe('h2-sa-token-path-in-argv');
    expect(f?.container).toEqual({ id: cid, runtime: 'unknown', pod_uid: uid });
    expect(f?.process?.interactive).toBe(true);
    expect(f?.process?.parents[0]).toEqual({ pid: 50, exe: '/bin/sh', argv: ['sh'] });
    expect(f?.evidence[0]?.records[0]?.type).toBe('EXECVE');
    expect(f?.source).toBe('audit');
  });

  it('suppresses repeats of a rule by the same process for a while', () => {
    const d = detector();
    expect(d.onAuditEvent(open(60, 1, TOKEN, '/usr/bin/python3', 0))).toHaveLength(1);
    expect(d.onAuditEvent(open(60, 1, TOKEN, '/usr/bin/python3', 1000))).toHaveLength(0);
    expect(d.detector.stats.suppressed).toBe(1);
    expect(d.onAuditEvent(open(60, 1, TOKEN, '/usr/bin/python3', 60_000))).toHaveLength(1);
  });

  it('does not suppress the same command by another process that got a reused pid', () => {
    const table = new ProcessTable();
    const d = detector({ processTable: table });
    const snap = (startTime: number) => table.applyProcSnapshot({ pid: 61, ppid: 1, startTime, comm: 'python3', cgroup: '0::/\n' }, T0);
    snap(1000);
    expect(d.onAuditEvent(open(61, 1, TOKEN, '/usr/bin/python3', 0))).toHaveLength(1);
    expect(d.onAuditEvent(open(61, 1, TOKEN, '/usr/bin/python3', 500))).toHaveLength(0); // same process
    snap(2000); // pid 61 exited and was given to a new process (pids wrap within the window)
    expect(d.onAuditEvent(open(61, 1, TOKEN, '/usr/bin/python3', 1000))).toHaveLength(1);
  });
});

describe('sequences', () => {
  const apiserver: Sockaddr = { family: 'inet', addr: '10.96.0.1', port: 443, path: null };

  it('a token read then an API-server connect from the same tree raises severity and links both', () => {
    const d = detector();
    d.onAuditEvent(exec(70, 1, ['bash'], '/bin/bash'));
    const [read] = d.onAuditEvent(open(71, 70, NODE_TOKEN, '/usr/bin/cat', 1000));
    const out = d.onAuditEvent(connect(72, 70, apiserver, '/usr/bin/curl', 5000));
    const seq = out.find((f) => f.rule === 'seq-credential-read-then-use');
    expect(seq).toBeDefined();
    expect(seq?.severity).toBe('critical');
    expect(seq?.evidence.map((e) => e.event_id)).toEqual([read?.evidence[0]?.event_id, out[0]?.evidence.at(-1)?.event_id]);
    expect(seq?.covers).toEqual(expect.arrayContaining(['H3', 'H6']));
    // One theft followed by more calls gives one sequence finding.
    expect(d.onAuditEvent(connect(72, 70, apiserver, '/usr/bin/curl', 6000))).toEqual([]);
  });

  it('does not join outside the window or across unrelated trees', () => {
    const d = detector();
    d.onAuditEvent(open(81, 80, NODE_TOKEN, '/usr/bin/cat', 0));
    expect(d.onAuditEvent(connect(82, 80, apiserver, '/usr/bin/curl', 61_000))).toEqual([]);
    d.onAuditEvent(open(91, 90, NODE_TOKEN, '/usr/bin/head', 100_000));
    expect(d.onAuditEvent(connect(99, 98, apiserver, '/usr/bin/curl', 101_000))).toEqual([]);
  });

  it('does not join a read on one node to a use with the same pids on another (a log of several nodes)', () => {
    const d = detector();
    const on = (node: string, ev: AuditEvent): AuditEvent => ({ ...ev, node });
    d.onAuditEvent(on('node-b', exec(70, 1, ['bash'], '/bin/bash')));
    d.onAuditEvent(on('node-b', open(71, 70, NODE_TOKEN, '/usr/bin/cat', 1000)));
    // node-c has its own bash 70: its curl's tree holds pid 70 as the reader's does on node-b
    d.onAuditEvent(on('node-c', exec(70, 1, ['bash'], '/bin/bash')));
    const other = d.onAuditEvent(on('node-c', connect(72, 70, apiserver, '/usr/bin/curl', 5000)));
    expect(other.map((f) => f.rule)).not.toContain('seq-credential-read-then-use');
    // the same use on the read's own node joins it
    const same = d.onAuditEvent(on('node-b', connect(72, 70, apiserver, '/usr/bin/curl', 6000)));
    expect(same.map((f) => f.rule)).toContain('seq-credential-read-then-use');
  });

  it('joins by container even when the processes are unrelated', () => {
    const cid = 'c'.repeat(64);
    const reader: ProcReader = {
      readStat: () => ({ ppid: 1, startTime: 1, comm: 'x' }),
      readCgroup: () => `4:memory:/docker/${cid}\n`,
      readExe: () => null,
      readCmdline: () => null,
      readCwd: () => null,
      readLoginUid: () => null,
    };
    const table = new ProcessTable({ reader });
    table.noteRecordPid(101);
    table.noteRecordPid(202);
    const d = detector({ processTable: table });
    d.onAuditEvent(open(101, 100, TOKEN, '/usr/bin/cat', 0));
    const out = d.onAuditEvent(connect(202, 200, { family: 'inet', addr: '10.0.0.1', port: 6443, path: null }, '/usr/bin/wget', 2000));
    expect(out.map((f) => f.rule)).toContain('seq-credential-read-then-use');
  });
});

describe('rules lifecycle', () => {
  it('reload with a broken dir throws a clear error and keeps the old rules', () => {
    const d = detector();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-bad-'));
    fs.writeFileSync(path.join(dir, 'bad.yaml'), 'rules:\n  - id: x\n    severity: nope\n');
    expect(() => d.detector.reload(dir)).toThrow(/bad\.yaml:\d+:\d+: /);
    expect(d.onAuditEvent(exec(110, 1, ['kubectl', 'get', 'secrets'], '/usr/bin/kubectl'))).toHaveLength(1);
    fs.rmSync(dir, { recursive: true });
  });

  it('default audit rules: exec and connect, watches only for paths that exist, never every open()', () => {
    const existing = new Set(['/etc/kubernetes/pki', '/root/.kube/config', '/home/alice/.kube/config']);
    const d = detector({
      auditRules: {
        pathExists: (p) => existing.has(p),
        listDir: (dir) => (dir === '/home' ? ['alice', 'bob'] : []),
      },
    });
    const rules = d.detector.requiredAuditRules();
    expect(rules).toContain('-a always,exit -F arch=b64 -S execve,execveat -k credwatch:exec');
    expect(rules).toContain('-a always,exit -F arch=b32 -S execve,execveat -k credwatch:exec');
    expect(rules).toContain('-a always,exit -F arch=b64 -S connect -F saddr_fam=2 -k credwatch:connect');
    // opens are audited only for watched objects: io_uring opens filtered by the same dir/path
    expect(rules.filter((r) => /-S [^ ]*open/.test(r) && !/ -F (dir|path)=\S+ -F key=credwatch:node-cred$/.test(r))).toEqual([]);
    expect(rules).toContain('-a always,io_uring -S connect -F key=credwatch:connect');
    expect(rules).toContain('-a always,io_uring -S openat,openat2 -F path=/root/.kube/config -F key=credwatch:node-cred');
    expect(rules.filter((r) => r.startsWith('-a always,io_uring -S openat'))).toHaveLength(3);
    expect(rules.filter((r) => r.startsWith('-w'))).toEqual([
      '-w /etc/kubernetes/pki -p r -k credwatch:node-cred',
      '-w /root/.kube/config -p r -k credwatch:node-cred',
      '-w /home/alice/.kube/config -p r -k credwatch:node-cred',
    ]);
    expect(new Set(rules).size).toBe(rules.length);
  });
});
