/**
 * Incidents keyed on the object, not the name (issue 17 follow-up, issue 16): one actor reading one
 * pod token under any alias is one incident; a token rotated by the kubelet stays the same incident, but
 * each new jti read reaches the token trail. Real files laid out like the kubelet's atomic writer in a
 * temp dir, hand-built events carrying their real dev/inode, the real engine, watch registry, claims
 * reader and token trail.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent, ProcessInfo } from '../../../src/audit/event';
import { createHostStages, type HostStages } from '../../../src/pipeline/host-stages';
import type { Finding } from '../../../src/model/finding';
import { latestRevisions } from '../../../src/detect/incidents';
import { TOKEN_TRAIL_RULE, TokenTrail } from '../../../src/detect/token-trail';
import { ProcessTable } from '../../../src/enrich/process-table';
import type { ProcReader } from '../../../src/enrich/proc-reader';
import { TokenClaimsReader } from '../../../src/enrich/token-claims';
import { WatchedObjects, kernelDevString } from '../../../src/enrich/watched-objects';
import { boundClaims, signJwt } from '../../helpers/jwt';
import { request } from '../../helpers/kube-requests';
import { makeEvent } from '../enrich/helpers';

const POD = '3a1c9e2f-8b7d-4e6a-9c5b-1d2e3f4a5b6c';
const CID = 'a'.repeat(64);
const SA = '/run/secrets/kubernetes.io/serviceaccount';
const T0 = 1_800_000_000_000;
/** Reads from the node by one SSH login (audit ses 7): one actor whatever the pids. */
const SES = 7;

let root = '';
let vol = '';
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-incident-objects-'));
  vol = path.join(root, 'pods', POD, 'volumes', 'kubernetes.io~projected', 'kube-api-access-z9k4p');
  fs.mkdirSync(vol, { recursive: true });
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** What the kubelet's atomic writer does: a new timestamped dir, then `..data` swapped to it. */
function writeToken(stamp: string, content: string): string {
  const dir = path.join(vol, stamp);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'token'), content);
  fs.rmSync(path.join(vol, '..data'), { force: true });
  fs.symlinkSync(stamp, path.join(vol, '..data'));
  if (!fs.existsSync(path.join(vol, 'token'))) fs.symlinkSync('..data/token', path.join(vol, 'token'));
  return path.join(dir, 'token');
}

/**
 * A pod's projected volume whose path holds `/var/lib/kubelet/pods/` (under the temp dir), so that a
 * command line naming it hits h3's argv indicator as the real path does: the exec's hit is real, not absent.
 */
function kubeletVolume(uid: string): string {
  const dir = path.join(root, 'var', 'lib', 'kubelet', 'pods', uid, 'volumes', 'kubernetes.io~projected', 'kube-api-access-b');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

let serial = 0;
function event(pid: number, over: Partial<AuditEvent>, proc: Partial<ProcessInfo> = {}): AuditEvent {
  serial++;
  return makeEvent({
    id: `${T0 / 1000 + serial}.000:${serial}`,
    serial,
    timeMs: T0 + serial * 1000,
    time: new Date(T0 + serial * 1000).toISOString(),
    process: { pid, ppid: 1, exe: '/usr/bin/cat', comm: 'cat', cwd: '/', ses: pid >= 700 ? SES : null, ...proc },
    ...over,
  });
}

/** An openat (or, with `uring`, an io_uring IORING_OP_OPENAT) of `file` under the name `name`. */
function openOf(pid: number, name: string, file: string, uring = false): AuditEvent {
  const st = fs.statSync(file, { bigint: true });
  return event(pid, {
    // As the event builder gives a URINGOP event: the op stands in for the syscall.
    syscall: uring ? { arch: 'io_uring', nr: 18, name: 'openat', success: true, exit: 3 } : { arch: 'x86_64', nr: 257, name: 'openat', success: true, exit: 3 },
    ...(uring ? { uring: { op: 18, name: 'openat', success: true, exit: 3 } } : {}),
    paths: [{ name, nametype: 'NORMAL', inode: Number(st.ino), mode: '0100644', dev: kernelDevString(st.dev) }],
    key: 'credwatch:pod-token',
  });
}

function execOf(pid: number, argv: string[]): AuditEvent {
  return event(pid, { syscall: { arch: 'x86_64', nr: 59, name: 'execve', success: true, exit: 0 } }, { argv });
}

/** pids 500-599 run in the token's pod, the others on the node. */
function table(): ProcessTable {
  const reader: ProcReader = {
    readStat: () => ({ ppid: 1, startTime: 1, comm: 'x' }),
    readCgroup: (pid) => (pid >= 500 && pid < 600 ? `0::/kubepods/besteffort/pod${POD}/${CID}\n` : '0::/user.slice/session-7.scope\n'),
    readExe: () => null,
    readCmdline: () => null,
    readCwd: () => null,
    readLoginUid: () => null,
  };
  const t = new ProcessTable({ reader });
  for (let pid = 501; pid < 520; pid++) t.noteRecordPid(pid);
  for (let pid = 701; pid < 720; pid++) t.noteRecordPid(pid);
  return t;
}

function detector(opts: { maxEvidence?: number; claims?: TokenClaimsReader; updateEveryMs?: number } = {}): HostStages {
  const claims = opts.claims;
  const objects = new WatchedObjects({ reindexMs: 0, ...(claims ? { onIndexFile: (i: string, f: string, o: Parameters<TokenClaimsReader['noteFile']>[2]) => claims.noteFile(i, f, o) } : {}) });
  objects.applyRules([`-w ${vol} -p r -k credwatch:pod-token`]);
  return createHostStages({ host: 'node-a', users: null, processTable: table(), objects, tokenClaims: claims, incidents: { maxEvidence: opts.maxEvidence ?? 16, ...(opts.updateEveryMs !== undefined ? { updateEveryMs: opts.updateEveryMs } : {}) } });
}

/** Everything the detector emitted, then its tick: what a receiver keeping the highest revision holds. */
function run(d: HostStages, events: AuditEvent[]): { emitted: Finding[]; latest: Finding[] } {
  const emitted: Finding[] = [];
  for (const ev of events) emitted.push(...d.onAuditEvent(ev));
  emitted.push(...d.tick(T0 + (serial + 1) * 1000));
  return { emitted, latest: latestRevisions(emitted) };
}

describe('incidents keyed on the watched object', () => {
  it('one actor reading one token under every alias (proc root, kubelet path, ..data, timestamp dir, hard link, bind mount, io_uring) is one incident', () => {
    const real = writeToken('..2026_12_02_07_00_00.123456789', 'eyJfake');
    const link = path.join(root, 'hardlink-elsewhere');
    fs.linkSync(real, link);
    const names = [
      `/proc/4242/root${SA}/token`,
      path.join(vol, 'token'),
      path.join(vol, '..data', 'token'),
      path.join(vol, '..2026_12_02_07_00_00.123456789', 'token'),
      link,
      `/mnt/bind-of-the-volume/token`,
    ];
    const events = names.map((n, i) => openOf(701 + i, n, real));
    events.push(openOf(701 + names.length, `${SA}/token`, real, true)); // io_uring openat via nsenter -m
    const d = detector();
    const { emitted, latest } = run(d, events);
    expect(new Set(emitted.map((f) => f.id)).size).toBe(1);
    expect(latest).toHaveLength(1);
    const f = latest[0]!;
    expect(f.count).toBe(events.length);
    expect(f.incident).toEqual({ actor: `host-session:${SES}`, object: `object:pod-token:${path.join(vol, 'token')}` });
    expect(f.object).toMatchObject({ pod_uid: POD, via: 'inode' });
    // every alias is evidence of it: the names stay visible, only the key ignores them
    expect(f.evidence.map((e) => e.event_id)).toEqual(events.map((e) => e.id));
  });

  it('a command line naming the token and the open that follows are one incident, and a later command line under that name joins it', () => {
    const real = writeToken('..2026_12_02_07_00_00.123456789', 'eyJfake');
    const name = `/proc/4242/root${SA}/token`;
    const d = detector();
    const { latest } = run(d, [execOf(710, ['cat', name]), openOf(710, name, real), openOf(711, path.join(vol, 'token'), real), execOf(712, ['cat', name]), openOf(712, name, real)]);
    expect(latest).toHaveLength(1);
    expect(latest[0]!.rules).toEqual(expect.arrayContaining(['h2-sa-token-path-in-argv', 'h3-kubelet-pod-volume-harvest']));
    expect(latest[0]!.count).toBe(5);
  });

  it('a command line naming a new alias after the object was read, then the open through it, is the same incident (exec before open)', () => {
    const real = writeToken('..2026_12_02_07_00_00.123456789', 'eyJfake');
    const alias = `/proc/4243/root${SA}/token`;
    const d = detector();
    // the first read opens the object's incident; a later `cat <new alias>` names it before its open
    const { emitted, latest } = run(d, [openOf(710, path.join(vol, 'token'), real), execOf(711, ['cat', alias]), openOf(711, alias, real)]);
    expect(new Set(emitted.map((f) => f.id)).size).toBe(1);
    expect(latest).toHaveLength(1);
    expect(latest[0]!.rules).toEqual(expect.arrayContaining(['h2-sa-token-path-in-argv', 'h3-kubelet-pod-volume-harvest']));
    expect(latest[0]!.count).toBe(3);
    expect(latest[0]!.evidence.map((e) => e.event_id)).toHaveLength(3);
    // the fold is an escalation (h2 is new to the incident): it went out with the open, not at the tick
    expect(emitted.filter((f) => f.rules?.includes('h2-sa-token-path-in-argv'))[0]?.count).toBe(3);
  });

  it('the open that folds a held alias in emits the escalation at once, not with the next plain update', () => {
    const real = writeToken('..2026_12_02_07_00_00.123456789', 'eyJfake');
    const alias = `/proc/4243/root${SA}/token`;
    // plain updates at most once an hour: only an escalation goes out at once
    const d = detector({ updateEveryMs: 3_600_000 });
    const [first] = d.onAuditEvent(openOf(710, path.join(vol, 'token'), real));
    expect(d.onAuditEvent(execOf(711, ['cat', alias]))).toEqual([]);
    const atOpen = d.onAuditEvent(openOf(711, alias, real));
    expect(atOpen).toHaveLength(1);
    expect(atOpen[0]!.id).toBe(first!.id);
    expect(atOpen[0]!.rules).toContain('h2-sa-token-path-in-argv');
    expect(atOpen[0]!.count).toBe(3);
  });

  it('a held name that no open shows to be the object still goes out: after the hold, by a later event, or by the tick', () => {
    const real = writeToken('..2026_12_02_07_00_00.123456789', 'eyJfake');
    const d = detector();
    const first = d.onAuditEvent(openOf(710, path.join(vol, 'token'), real));
    expect(first).toHaveLength(1);
    // names a token path the watch does not hold: held, not emitted yet
    expect(d.onAuditEvent(execOf(711, ['cat', `/proc/4243/root${SA}/token`]))).toEqual([]);
    // a later unrelated event past the hold releases it (replay ticks only at its end)
    const later = d.onAuditEvent(event(712, { syscall: { arch: 'x86_64', nr: 59, name: 'execve', success: true, exit: 0 } }, { argv: ['true'], exe: '/usr/bin/true', comm: 'true' }));
    expect(later.map((f) => f.rule)).toEqual(['h2-sa-token-path-in-argv']);
    expect(later[0]!.revision).toBe(1);
    expect(later[0]!.id).not.toBe(first[0]!.id);
    // and a second one, released by the tick alone
    expect(d.onAuditEvent(execOf(713, ['cat', `/proc/4244/root${SA}/token`]))).toEqual([]);
    const ticked = d.tick(T0 + (serial + 1) * 1000);
    expect(ticked.filter((f) => f.revision === 1).map((f) => f.rule)).toEqual(['h2-sa-token-path-in-argv']);
  });

  // Live, the exec and the open of one `cat` share pid, start time, exe and command line, and a token
  // that is no JWT has no jti: the open's hit must not pass for a repeat of the exec's (it did, and the
  // held name went out only after HOLD_MS: 570 ms in bench/latency.js under load).
  it.each([
    ['one login session', 710, {}],
    // pids the process table has not seen: the actor is their parent, 729
    ['siblings under one parent, no session (a probe beside a load generator)', 730, { ses: null, ppid: 729 }],
  ] as const)('a command line naming another watched token, then its open, goes out with the open, not after the hold (%s)', (_, pid, proc) => {
    const real = writeToken('..2026_12_02_07_00_00.123456789', 'not-a-jwt');
    const volB = kubeletVolume('9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f');
    fs.writeFileSync(path.join(volB, 'token'), 'not-a-jwt-either');
    const d = detector();
    d.enricher.objects?.applyRules([`-w ${volB} -p r -k credwatch:pod-token`]);
    const as = (ev: AuditEvent): AuditEvent => ({ ...ev, process: { ...ev.process!, ...proc } });
    expect(d.onAuditEvent(as(openOf(pid, path.join(vol, 'token'), real)))).toHaveLength(1);
    const exec = as(execOf(pid + 1, ['cat', path.join(volB, 'token')]));
    // The open follows its exec within a millisecond, as live.
    const open = { ...as(openOf(pid + 1, path.join(volB, 'token'), path.join(volB, 'token'))), timeMs: exec.timeMs + 1 };
    const atExec = d.onAuditEvent(exec);
    const atOpen = d.onAuditEvent(open);
    // Held at the exec (the actor has an object incident: the name may be an alias of it); the open
    // shows another object, and the incident of both events goes out with the open, revision 1.
    expect(atExec).toEqual([]);
    expect(atOpen.map((f) => [f.rule, f.revision, f.count, f.evidence.map((e) => e.event_id)])).toEqual([['h3-kubelet-pod-volume-harvest', 1, 2, [exec.id, open.id]]]);
    // known by the object the open showed, not by the name the command line used
    expect(atOpen[0]!.incident?.object).toBe(`object:pod-token:${path.join(volB, 'token')}`);
  });

  it('one process reading two pods\' tokens (`cat A B`, no jti) is two incidents: the second open is no repeat of the first', () => {
    const real = writeToken('..2026_12_02_07_00_00.123456789', 'not-a-jwt');
    const volB = kubeletVolume('9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f');
    fs.writeFileSync(path.join(volB, 'token'), 'not-a-jwt-either');
    const d = detector();
    d.enricher.objects?.applyRules([`-w ${volB} -p r -k credwatch:pod-token`]);
    const a = path.join(vol, 'token');
    const b = path.join(volB, 'token');
    const exec = execOf(715, ['cat', a, b]);
    const openA = { ...openOf(715, a, real), timeMs: exec.timeMs + 1 };
    const openB = { ...openOf(715, b, b), timeMs: exec.timeMs + 2 };
    const { latest } = run(d, [exec, openA, openB]);
    // A's incident opened with the exec (named by its first path), which A's open joined; B's is its own.
    expect(latest.map((f) => [f.incident?.object, f.evidence.map((e) => e.event_id)])).toEqual([
      [`file:${a}`, [exec.id, openA.id]],
      [`object:pod-token:${b}`, [openB.id]],
    ]);
  });

  it('a command line naming the token by an actor with no object incident goes out at once (no hold)', () => {
    writeToken('..2026_12_02_07_00_00.123456789', 'eyJfake');
    const d = detector();
    const out = d.onAuditEvent(execOf(710, ['cat', `/proc/4242/root${SA}/token`]));
    expect(out.map((f) => f.rule)).toEqual(['h2-sa-token-path-in-argv']);
  });

  it('another actor, or another token, is another incident', () => {
    const real = writeToken('..2026_12_02_07_00_00.123456789', 'eyJfake');
    const other = path.join(vol, 'ca.crt');
    fs.writeFileSync(other, 'cert');
    const d = detector();
    const { latest } = run(d, [openOf(701, path.join(vol, 'token'), real), openOf(501, `${SA}/token`, real), openOf(702, path.join(vol, 'ca.crt'), other)]);
    expect(latest.map((f) => f.incident?.actor)).toEqual([`host-session:${SES}`, `container:${CID.slice(0, 12)}`, `host-session:${SES}`]);
    expect(new Set(latest.map((f) => f.incident?.object)).size).toBe(2);
  });

  it('without a watch hit the path text is the object: ..data and ..<timestamp> are the same file, an ordinary ".../" dir is not', () => {
    const d = detector();
    const { latest } = run(d, [
      execOf(501, ['cat', `${SA}/..data/token`]),
      execOf(502, ['cat', `${SA}/..2026_12_02_07_00_00.123456789/token`]),
      execOf(503, ['cat', `/var${SA}/token`]),
      execOf(504, ['cat', `${SA}/.../token`]),
    ]);
    expect(latest.map((f) => [f.incident?.object, f.count])).toEqual([
      [`file:${SA}/token`, 3],
      [`file:${SA}/.../token`, 1],
    ]);
  });
});

describe('token rotation inside one incident: each jti read reaches the token trail', () => {
  const JTI_A = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
  const JTI_B = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
  const token = (jti: string): string => signJwt(boundClaims({ jti, podUid: POD, node: 'node-a', iat: T0 / 1000 - 60, exp: T0 / 1000 + 86_400 }));

  /** Reads before and after a rotation, all of them fed to the trail as the agent does; then a request with the new jti. */
  function rotate(pids: number[]): { trail: TokenTrail; emitted: Finding[]; latest: Finding[]; linked: Finding[] } {
    const first = writeToken('..2026_12_02_07_00_00.111111111', token(JTI_A));
    const claims = new TokenClaimsReader();
    const d = detector({ maxEvidence: 2, claims });
    const trail = new TokenTrail({ host: 'node-a', now: () => T0 + 10_000_000 });
    const emitted: Finding[] = [];
    const feed = (fs_: Finding[]): void => {
      trail.noteHostFindings(fs_);
      emitted.push(...fs_);
    };
    const before = pids.slice(0, -1);
    for (const pid of before) feed(d.onAuditEvent(openOf(pid, `${SA}/token`, first)));
    const second = writeToken('..2026_12_02_08_00_00.222222222', token(JTI_B));
    const after = d.onAuditEvent(openOf(pids[pids.length - 1]!, `${SA}/token`, second));
    feed(after);
    expect(after.map((f) => f.token?.jti), 'the read of the new token is emitted at once with its jti').toEqual([JTI_B]);
    feed(d.tick(T0 + (serial + 1) * 1000));
    // Each request opens its token's trail: the linked finding comes back at once.
    const linked = [
      ...trail.onKubeEvent(request({ auditID: 'req-new-token', atMs: T0 + (serial + 5) * 1000, jti: JTI_B, podUid: POD, node: 'node-a', verb: 'list', resource: 'secrets' })),
      ...trail.onKubeEvent(request({ auditID: 'req-old-token', atMs: T0 + (serial + 6) * 1000, jti: JTI_A, podUid: POD, node: 'node-a', verb: 'get', resource: 'pods' })),
    ];
    return { trail, emitted, latest: latestRevisions(emitted), linked };
  }

  it('storm path (evidence full, every rule known): a read with a new jti is built, emitted and noted', () => {
    const { trail, latest, linked: out } = rotate([501, 502, 503, 504, 505, 506]);
    expect(latest).toHaveLength(1); // one behaviour across the rotation
    expect(latest[0]!.count).toBe(6);
    expect(out.map((f) => [f.rule, f.token?.jti, f.evidence.filter((e) => e.role.startsWith('sequence:api-request')).map((e) => e.event_id)])).toEqual([
      [TOKEN_TRAIL_RULE, JTI_B, ['req-new-token']],
      [TOKEN_TRAIL_RULE, JTI_A, ['req-old-token']],
    ]);
    expect(trail.stats.otherJti).toBe(0);
  });

  it('one long-lived process reading again within the repeat window: the read after the rotation is not suppressed', () => {
    const { linked } = rotate([507, 507, 507]);
    expect(linked.map((f) => f.token?.jti)).toEqual([JTI_B, JTI_A]);
  });
});
