/**
 * Objects, not names: a hit on one of our watches is identified by its key and the PATH record's
 * (dev, inode), so every alias of a pod's token gives the same finding, with the token owner's pod
 * (finding.object) and the reader's own container (finding.container). Real files in a temp dir
 * laid out like the kubelet's atomic writer; hand-built events carrying their real inode/dev.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../../src/audit/event';
import { createHostStages } from '../../../src/pipeline/host-stages';
import { ProcessTable } from '../../../src/enrich/process-table';
import type { ProcReader } from '../../../src/enrich/proc-reader';
import { WatchedObjects, kernelDevString, stripProcRoot, stripProcRootsInText } from '../../../src/enrich/watched-objects';
import { makeEvent } from '../enrich/helpers';
import { TokenClaimsReader } from '../../../src/enrich/token-claims';
import { boundClaims, signJwt } from '../../helpers/jwt';

const POD = '7d3f4c2a-1b5e-4c8d-9f0a-2e6b8c4d1a35';
const OTHER_POD = '11111111-2222-3333-4444-555555555555';
const CID = 'c'.repeat(64);
const OTHER_CID = 'e'.repeat(64);
const SA = '/run/secrets/kubernetes.io/serviceaccount';

let root = '';
let vol = '';
let realToken = '';
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-objects-'));
  vol = path.join(root, 'pods', POD, 'volumes', 'kubernetes.io~projected', 'kube-api-access-q7x2m');
  const stamp = path.join(vol, '..2026_11_22_13_40_12.123');
  fs.mkdirSync(stamp, { recursive: true });
  realToken = path.join(stamp, 'token');
  fs.writeFileSync(realToken, 'eyJfake');
  fs.symlinkSync('..2026_11_22_13_40_12.123', path.join(vol, '..data'));
  fs.symlinkSync('..data/token', path.join(vol, 'token'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

let serial = 1000;
function openOf(pid: number, name: string, file: string, exe: string, cwd = '/'): AuditEvent {
  const st = fs.statSync(file, { bigint: true });
  serial++;
  return makeEvent({
    id: `1800000000.${String(serial % 1000).padStart(3, '0')}:${serial}`,
    serial,
    syscall: { arch: 'x86_64', nr: 257, name: 'openat', success: true, exit: 3 },
    process: { pid, ppid: 1, exe, comm: path.basename(exe), cwd },
    paths: [{ name, nametype: 'NORMAL', inode: Number(st.ino), mode: '0100644', dev: kernelDevString(st.dev) }],
    key: 'credwatch:pod-token',
  });
}

/** pid -> cgroup: 500s in the token's pod, 600s in another pod, others on the node. */
function table(): ProcessTable {
  const reader: ProcReader = {
    readStat: () => ({ ppid: 1, startTime: 1, comm: 'x' }),
    readCgroup: (pid) =>
      pid >= 500 && pid < 600
        ? `0::/kubepods/besteffort/pod${POD}/${CID}\n`
        : pid >= 600 && pid < 700
          ? `0::/kubepods/besteffort/pod${OTHER_POD}/${OTHER_CID}\n`
          : '0::/system.slice/sshd.service\n',
    readExe: () => null,
    readCmdline: () => null,
    readCwd: () => null,
    readLoginUid: () => null,
  };
  const t = new ProcessTable({ reader });
  for (const pid of [501, 502, 503, 601, 701, 702, 703, 704, 705]) t.noteRecordPid(pid);
  return t;
}

function setup(): ReturnType<typeof createHostStages> {
  const objects = new WatchedObjects();
  objects.applyRules([`-w ${vol} -p r -k credwatch:pod-token`]);
  return createHostStages({ host: 'node-a', users: null, processTable: table(), objects });
}

describe('watched objects: identified by key + inode, whatever the name', () => {
  it('node-side aliases of the pod token all give h3 with the owner pod and no reader container', () => {
    const d = setup();
    const aliases: [number, string, string][] = [
      [701, `/proc/4242/root${SA}/token`, '/'], // /proc/<pid>/root
      [702, `/proc/4242/cwd/token`, '/'], // /proc/<pid>/cwd of a process sitting in the SA dir
      [703, `${SA}/token`, '/'], // nsenter -m: the pod's name, the node's cgroup
      [704, 'token', '/mnt/elsewhere'], // a bind mount elsewhere, relative after cd
      [705, path.join(vol, '..data', 'token'), '/'], // ..data/ on the kubelet dir
    ];
    for (const [pid, name, cwd] of aliases) {
      const fs_ = d.onAuditEvent(openOf(pid, name, realToken, '/usr/bin/cat', cwd));
      expect(fs_.map((f) => f.rule), name).toEqual(['h3-kubelet-pod-volume-harvest']);
      const f = fs_[0]!;
      expect(f.object, name).toEqual({ class: 'pod-token', pod_uid: POD, container_id: null, via: 'inode', foreign: true });
      expect(f.container, name).toBeNull();
    }
  });

  it('a read from another pod gives h3 with the owner pod and the reader own container', () => {
    const [f, ...rest] = setup().onAuditEvent(openOf(601, `/host/var/lib/kubelet-copy/token`, realToken, '/bin/busybox'));
    expect(rest).toEqual([]);
    expect(f?.rule).toBe('h3-kubelet-pod-volume-harvest');
    expect(f?.object?.pod_uid).toBe(POD);
    expect(f?.container).toMatchObject({ id: OTHER_CID, pod_uid: OTHER_POD });
  });

  it('inside the pod, any name of its own token (timestamped dir, hard link) is h1, not h3', () => {
    const link = path.join(vol, 'innocent.txt');
    fs.linkSync(realToken, link);
    for (const [pid, name] of [
      [501, `${SA}/..2026_11_22_13_40_12.123/token`],
      [502, `${SA}/innocent.txt`],
    ] as const) {
      // A detector each: in one, the second read is the same behaviour (same pod, same object: one incident).
      const [f, ...rest] = setup().onAuditEvent(openOf(pid, name, link, '/bin/cat'));
      expect(rest, name).toEqual([]);
      expect(f?.rule, name).toBe('h1-sa-token-read');
      expect(f?.object?.foreign).toBe(false);
      expect(f?.container?.pod_uid).toBe(POD);
    }
  });

  it('the pod own client library reading its token stays quiet (object and name do not add up twice)', () => {
    expect(setup().onAuditEvent(openOf(503, `${SA}/token`, realToken, '/app/server'))).toEqual([]);
  });

  it('a rotated token (new ..timestamp dir) is found after a re-index on the miss', () => {
    const d = setup();
    const stamp2 = path.join(vol, '..2026_11_22_14_40_12.456');
    fs.mkdirSync(stamp2);
    fs.writeFileSync(path.join(stamp2, 'token'), 'eyJnew');
    const [f] = d.onAuditEvent(openOf(701, `/proc/1/root${SA}/token`, path.join(stamp2, 'token'), '/usr/bin/cat'));
    expect(f?.object).toMatchObject({ pod_uid: POD, via: 'inode' });
    expect(d.enricher.objects.stats.reindexes).toBe(1);
  });

  it('without an index entry (replay) the key still names the class and the path may name the pod', () => {
    const d = createHostStages({ host: 'node-a', users: null });
    const ev = openOf(701, `/var/lib/kubelet/pods/${POD}/volumes/kubernetes.io~projected/kube-api-access-q7x2m/token`, realToken, '/usr/bin/cat');
    const [f] = d.onAuditEvent(ev);
    expect(f?.object).toEqual({ class: 'pod-token', pod_uid: POD, container_id: null, via: 'key', foreign: true });
    expect(d.enricher.objects.stats.keyOnlyHits).toBe(1);
  });

  it('an event without one of our watch keys is no object hit, whatever inode it names', () => {
    const d = setup();
    const ev = { ...openOf(701, '/tmp/x', realToken, '/usr/bin/cat'), key: 'someone-else' };
    expect(d.onAuditEvent(ev)).toEqual([]);
  });
});

describe('proc root prefixes in text', () => {
  it('strips /proc/<pid>/root and /proc/self/root from names and command lines', () => {
    expect(stripProcRoot(`/proc/4242/root${SA}/token`)).toBe(`${SA}/token`);
    expect(stripProcRoot(`/proc/self/root/etc/kubernetes/admin.conf`)).toBe('/etc/kubernetes/admin.conf');
    expect(stripProcRoot(`/proc/4242/task/4243/root/x`)).toBe('/x');
    expect(stripProcRoot(`/proc/4242/environ`)).toBe('/proc/4242/environ');
    expect(stripProcRootsInText(`cat /proc/99/root${SA}/token --x=/proc/self/root/var/lib/kubelet/pods`)).toBe(`cat ${SA}/token --x=/var/lib/kubelet/pods`);
  });

  it('argv indicators (H2, H3) see through /proc/<pid>/root and /proc/self/root', () => {
    const d = createHostStages({ host: 'node-a', users: null });
    const exec = (argv: string[]): AuditEvent =>
      makeEvent({
        syscall: { arch: 'x86_64', nr: 59, name: 'execve', success: true, exit: 0 },
        process: { pid: 800 + serial++, ppid: 1, argv, exe: '/usr/bin/cat', comm: 'cat', cwd: '/' },
      });
    expect(d.onAuditEvent(exec(['cat', `/proc/4242/root${SA}/token`])).map((f) => f.rule)).toContain('h2-sa-token-path-in-argv');
    expect(d.onAuditEvent(exec(['cat', `/proc/self/root/var/lib/kubelet/pods/${POD}/volumes/x`])).map((f) => f.rule)).toContain('h3-kubelet-pod-volume-harvest');
  });
});

describe('H13: another process environment', () => {
  const exec = (pid: number, argv: string[]): AuditEvent =>
    makeEvent({
      id: `1800000001.000:${++serial}`,
      serial,
      syscall: { arch: 'x86_64', nr: 59, name: 'execve', success: true, exit: 0 },
      process: { pid, ppid: 1, argv, exe: '/usr/bin/cat', comm: 'cat', cwd: '/' },
    });

  it('is medium when the target runs in a container and the reader is outside it (the node, another pod)', () => {
    const d = setup();
    const fromNode = d.onAuditEvent(exec(701, ['cat', '/proc/501/environ'])).find((f) => f.rule === 'h13-proc-environ-read');
    expect(fromNode?.severity).toBe('medium');
    expect(fromNode?.indicators).toEqual(['environ-in-argv', 'other-containers-environ']);
    const fromOtherPod = d.onAuditEvent(exec(601, ['cat', '/proc/502/environ'])).find((f) => f.rule === 'h13-proc-environ-read');
    expect(fromOtherPod?.severity).toBe('medium');
  });

  it('stays low for a reader in the same container, and for a target on the node', () => {
    const d = setup();
    expect(d.onAuditEvent(exec(502, ['cat', '/proc/501/environ'])).find((f) => f.rule === 'h13-proc-environ-read')?.severity).toBe('low');
    expect(d.onAuditEvent(exec(702, ['cat', '/proc/703/environ'])).find((f) => f.rule === 'h13-proc-environ-read')?.severity).toBe('low');
  });
});

describe('token claims on the finding (issue 18): the agent decodes the file the watch found, whatever the name', () => {
  it('h1 in the pod and h3 from the node carry the same claims, by inode, decoded once', () => {
    fs.writeFileSync(realToken, signJwt(boundClaims({ jti: 'jti-objects-1', podUid: POD, node: 'node-a' })));
    const reader = new TokenClaimsReader();
    const objects = new WatchedObjects({ onIndexFile: (i, f, o) => reader.noteFile(i, f, o) });
    objects.applyRules([`-w ${vol} -p r -k credwatch:pod-token`]);
    const d = createHostStages({ host: 'node-a', users: null, processTable: table(), objects, tokenClaims: reader });
    const inPod = d.onAuditEvent(openOf(501, `${SA}/..data/token`, realToken, '/bin/cat'));
    const fromNode = d.onAuditEvent(openOf(701, `/proc/4242/root${SA}/token`, realToken, '/usr/bin/cat'));
    expect(inPod.map((f) => [f.rule, f.token?.jti])).toEqual([['h1-sa-token-read', 'jti-objects-1']]);
    expect(fromNode.map((f) => [f.rule, f.token?.jti, f.token?.pod_uid])).toEqual([['h3-kubelet-pod-volume-harvest', 'jti-objects-1', POD]]);
    expect(reader.stats.decoded).toBe(1);
  });

  it('without a claims reader (replay), findings carry no token field', () => {
    const [f] = setup().onAuditEvent(openOf(701, `/proc/4242/root${SA}/token`, realToken, '/usr/bin/cat'));
    expect(f).toBeDefined();
    expect(f).not.toHaveProperty('token');
  });
});
