/**
 * Repeat collapse (native/repeat_cache.h + detect/repeat-outcomes.ts) against the full path: the same
 * storm of look-alike connects to the docker socket, once through the native triage with repeats on
 * (most events arrive as repeat notes) and once as plain records, must give the same incidents, field
 * for field (ids, rules, counts, severities, revisions, evidence). Hostile look-alikes interleaved in
 * the storm (the very same record bytes from a process in a container, a child of a parent that exec'd
 * something else, a different command line) must each be found as the full path finds them.
 * Runs through the addon's triageRecords() test hook: no socket, no root.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { nativeTriageFor } from '../../../src/daemon/native-triage';
import type { Detector } from '../../../src/detect/engine';
import { createHostStages } from '../../../src/pipeline/host-stages';
import { latestRevisions } from '../../../src/detect/incidents';
import type { Finding } from '../../../src/model/finding';
import { PROC_SNAPSHOT_TYPE } from '../../../src/native/process-note';
import { REPEAT_NOTE_TYPE, REPEAT_TEMPLATE_TYPE } from '../../../src/native/repeat-note';
import { AuditPipeline } from '../../../src/pipeline/audit-pipeline';
import { ProcessTable } from '../../../src/enrich/process-table';
import { tryLoadNative } from '../../helpers/native';
import type { AuditEvent } from '../../../src/audit/event';
import type { ObjectHit, WatchedObjects } from '../../../src/enrich/watched-objects';

const { native, reason } = tryLoadNative();
if (reason) console.warn(`[skip] repeat collapse: ${reason}`);

interface Rec {
  type: number;
  text: string;
}

const T0 = 1_795_355_795_000;
const LOADGEN = '/usr/local/bin/loadgen';
const CONTAINER = 'a'.repeat(64);
const TOKEN = '/var/lib/kubelet/pods/0b5ab7c3-1f4e-4a5e-9c44-2b0a5d7e9f10/volumes/kubernetes.io~projected/kube-api-access-x7k2p/token';
const hex = (s: string): string => Buffer.from(s).toString('hex').toUpperCase();
const DOCKER_SOCK = hex('\u0001\u0000/var/run/docker.sock');
const SAFE_SOCK = hex('\u0001\u0000/run/user/1000/bus');

class Storm {
  readonly records: Rec[] = [];
  /** serial -> /proc snapshot text the reader would have sent ahead of that event. */
  readonly snapshots = new Map<number, string>();
  private serial = 700_000;
  private t = T0;

  private stamp(): string {
    const ms = this.t % 1000;
    return `audit(${Math.floor(this.t / 1000)}.${String(ms).padStart(3, '0')}:${this.serial}): `;
  }

  exec(pid: number, ppid: number, exe: string, argv: string[]): void {
    this.serial++;
    this.t += 1;
    const h = this.stamp();
    this.records.push(
      { type: 1300, text: `${h}arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=${ppid} pid=${pid} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="${exe.slice(exe.lastIndexOf('/') + 1)}" exe="${exe}" key="credwatch:exec"` },
      { type: 1309, text: `${h}argc=${argv.length} ${argv.map((a, i) => `a${i}="${a}"`).join(' ')}` },
      { type: 1307, text: `${h}cwd="/home/dev"` },
      { type: 1302, text: `${h}item=0 name="${exe}" inode=4242 dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0` },
      { type: 1327, text: `${h}proctitle=${hex(argv.join('\u0000'))}` },
      { type: 1320, text: h },
    );
  }

  /** `cat` opening `file` (a credential read when it is a pod token). */
  open(pid: number, ppid: number, file: string): void {
    this.serial++;
    this.t += 1;
    const h = this.stamp();
    this.records.push(
      { type: 1300, text: `${h}arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffd1 a2=0 a3=0 items=1 ppid=${ppid} pid=${pid} auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="cat" exe="/usr/bin/cat" key="credwatch:open"` },
      { type: 1307, text: `${h}cwd="/home/dev"` },
      { type: 1302, text: `${h}item=0 name="${file}" inode=777 dev=fe:00 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0` },
      { type: 1327, text: `${h}proctitle=${hex(`cat\u0000${file}`)}` },
      { type: 1320, text: h },
    );
  }

  /** A fork child of `ppid` (it never exec'd: comm and exe are its parent's) connecting to `saddr`; its stack pointer and registers differ in every process (ASLR), as the reader's mask allows. */
  connect(pid: number, ppid: number, saddr = DOCKER_SOCK, opts: { cgroup?: string; title?: string } = {}): void {
    this.serial++;
    this.t += 1;
    const h = this.stamp();
    this.records.push(
      { type: 1300, text: `${h}arch=c000003e syscall=42 success=no exit=-111 a0=3 a1=${(0x7ffe93262170 + (pid % 4096) * 16).toString(16)} a2=6e a3=${(pid * 7919).toString(16)} items=1 ppid=${ppid} pid=${pid} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="loadgen" exe="${LOADGEN}" key="credwatch:connect"` },
      { type: 1306, text: `${h}saddr=${saddr}` },
      { type: 1307, text: `${h}cwd="/home/dev"` },
      { type: 1302, text: `${h}item=0 name="/var/run/docker.sock" inode=16637958 dev=fe:00 mode=0140660 ouid=0 ogid=105 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0` },
      { type: 1327, text: `${h}proctitle=${hex(opts.title ?? `${LOADGEN}\u0000--child-connect`)}` },
      { type: 1320, text: h },
    );
    const cgroup = opts.cgroup ?? '0::/user.slice/user-1000.slice/session-3.scope\n';
    this.snapshots.set(this.serial, `${pid}\u0000${ppid}\u0000${this.t}\u0000loadgen\u0000${cgroup}`);
  }

  get endMs(): number {
    return this.t;
  }
}

function serialOf(r: Rec): number | null {
  const m = /audit\(\d+\.\d+:(\d+)\)/.exec(r.text);
  return m ? Number(m[1]) : null;
}

/** The stream as the reader sends it: each event's /proc snapshot ahead of its first item. */
function withSnapshots(items: Rec[], snapshots: Map<number, string>): Rec[] {
  const out: Rec[] = [];
  const sent = new Set<number>();
  for (const it of items) {
    const serial = serialOf(it);
    if (serial !== null && !sent.has(serial)) {
      sent.add(serial);
      const snap = snapshots.get(serial);
      if (snap !== undefined) out.push({ type: PROC_SNAPSHOT_TYPE, text: snap });
    }
    out.push(it);
  }
  return out;
}

/**
 * An operator rule that reads the parent chain only: a connect to the docker socket by a child of
 * python. A repeat whose parent changed must be evaluated again to be seen by it.
 */
const RULES_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-repeat-'));
fs.writeFileSync(
  path.join(RULES_DIR, 'parent.yaml'),
  `rules:
  - id: x1-python-child-runtime-socket
    title: A child of python connects to the docker socket
    description: test rule reading the parent chain
    severity: critical
    confidence: high
    mitre: [T1613]
    covers: [H7]
    indicators:
      - id: python-parent
        weight: 2
        anchor: true
        match:
          event: connect
          parent_program: [python3]
    threshold: 2
    audit_rules: ['-a always,exit -F arch=b64 -S connect -F saddr_fam=1 -k credwatch:connect']
`,
);
afterAll(() => fs.rmSync(RULES_DIR, { recursive: true, force: true }));

type StageOptions = Pick<Parameters<typeof createHostStages>[0], 'objects' | 'tokenClaims'>;

function run(items: Rec[], endMs: number, extra: () => StageOptions = () => ({})): { findings: Finding[]; detector: Detector } {
  const stages = createHostStages({ host: 'lab-node', users: null, processTable: new ProcessTable(), rulesDir: RULES_DIR, ...extra() });
  const detector = stages.detector;
  const findings: Finding[] = [];
  const pipeline = new AuditPipeline({ stages, live: true, nativeProcSnapshots: true, onFindings: (f) => findings.push(...f) });
  // Batches of 50 entries, as the reader's lingering batches would come.
  for (let i = 0; i < items.length; i += 50) pipeline.pushBatch(items.slice(i, i + 50));
  pipeline.flush();
  findings.push(...detector.tick(endMs + 2000));
  return { findings: latestRevisions(findings), detector };
}

/** Both paths over one storm: native triage with repeats, and the plain records. */
function bothPaths(storm: Storm, extra?: () => StageOptions) {
  const spec = { ...nativeTriageFor(createHostStages({ host: 'lab-node', users: null, rulesDir: RULES_DIR }).detector).spec, repeats: true };
  const triaged = native!.triageRecords(spec, storm.records);
  const collapsed = run(withSnapshots(triaged.items, storm.snapshots), storm.endMs, extra);
  const full = run(withSnapshots(storm.records, storm.snapshots), storm.endMs, extra);
  return { triaged, collapsed, full };
}

const byId = (fs: Finding[]): Finding[] => [...fs].sort((a, b) => a.id.localeCompare(b.id));

describe.skipIf(native === null)('repeat collapse gives the incidents of the full path', () => {
  it('a storm of 400 identical docker-socket connects: the same incidents, most events decided from their template', () => {
    const storm = new Storm();
    storm.exec(19_999, 19_000, LOADGEN, [LOADGEN, '--child-connect']);
    for (let i = 0; i < 400; i++) storm.connect(20_000 + i, 19_999);
    const { triaged, collapsed, full } = bothPaths(storm);

    expect(triaged.stats.repeatNotes).toBeGreaterThan(350);
    expect(triaged.items.filter((r) => r.type === REPEAT_TEMPLATE_TYPE)).toHaveLength(triaged.stats.repeatTemplates);
    expect(triaged.items.filter((r) => r.type === REPEAT_NOTE_TYPE)).toHaveLength(triaged.stats.repeatNotes);
    const r = collapsed.detector.stats.repeats;
    // The first repeats fill the incident's evidence (built from their rebuilt events); the rest only count.
    expect(r.collapsed).toBeGreaterThan(350);
    expect(byId(collapsed.findings)).toEqual(byId(full.findings));
    const storms = collapsed.findings.filter((f) => f.rule === 'h7-runtime-socket-connect');
    expect(storms).toHaveLength(1);
    expect(storms[0]!.count).toBe(400);
    expect(collapsed.detector.stats.events).toBe(full.detector.stats.events);
    expect(collapsed.detector.stats.suppressed).toBe(full.detector.stats.suppressed);
  });

  it('children the reader found in /proc and children already gone: two views of one template, neither sent the full path again and again', () => {
    const storm = new Storm();
    storm.exec(19_999, 19_000, LOADGEN, [LOADGEN, '--child-connect']);
    for (let i = 0; i < 300; i++) storm.connect(20_000 + i, 19_999);
    // Every third child exited before its SYSCALL record was read: no snapshot, no start time, no cgroup.
    for (const [serial] of storm.snapshots) if (serial % 3 === 0) storm.snapshots.delete(serial);
    const { collapsed, full } = bothPaths(storm);
    expect(byId(collapsed.findings)).toEqual(byId(full.findings));
    const r = collapsed.detector.stats.repeats;
    expect(r.expanded.process ?? 0).toBeLessThanOrEqual(2);
    expect(r.collapsed).toBeGreaterThan(280);
  });

  it('look-alikes hidden in the storm are found as the full path finds them: same bytes from a container, a parent that exec’d, another command line, a credential read that a storm connect completes', () => {
    const storm = new Storm();
    storm.exec(19_999, 19_000, LOADGEN, [LOADGEN, '--child-connect']);
    storm.exec(29_999, 19_000, LOADGEN, [LOADGEN, '--child-connect']);
    for (let i = 0; i < 300; i++) {
      // Records byte for byte a storm event's (pid aside); only the /proc snapshot says "container".
      if (i === 100) storm.connect(25_000, 19_999, DOCKER_SOCK, { cgroup: `0::/system.slice/docker-${CONTAINER}.scope\n` });
      // One of the storm's two parents becomes python: its later children's records are unchanged.
      if (i === 150) storm.exec(29_999, 19_000, '/usr/bin/python3', ['python3', '-c', 'import socket']);
      // A pod token read by a sibling of the storm's children: the next storm connect completes a sequence.
      if (i === 120) storm.open(24_000, 19_999, TOKEN);
      if (i === 200) storm.connect(27_000, 19_999, DOCKER_SOCK, { title: `${LOADGEN}\u0000--steal` });
      if (i === 250) storm.connect(28_000, 19_999, SAFE_SOCK);
      storm.connect(20_000 + i, i % 2 === 0 ? 19_999 : 29_999);
    }
    const { collapsed, full } = bothPaths(storm);
    expect(byId(collapsed.findings)).toEqual(byId(full.findings));
    const inContainer = collapsed.findings.filter((f) => f.incident?.actor?.startsWith('container:'));
    expect(inContainer).toHaveLength(1);
    expect(inContainer[0]!.container?.id).toBe(CONTAINER);
    expect(inContainer[0]!.count).toBe(1);
    // The 75 children of the parent after it became python: the parent-reading rule joins the incident.
    const storms = collapsed.findings.filter((f) => f.incident?.object === 'unix:/run/docker.sock' && !f.incident.actor.startsWith('container:'));
    expect(storms).toHaveLength(1);
    expect(storms[0]!.rules).toContain('x1-python-child-runtime-socket');
    expect(storms[0]!.severity).toBe('critical');
    const why = collapsed.detector.stats.repeats.expanded;
    expect(why.process ?? 0).toBeGreaterThan(0);
    expect(why.parents ?? 0).toBeGreaterThan(0);
    // The sequence: credential read, then a use of the runtime socket by the same tree.
    expect(why.sequence ?? 0).toBeGreaterThan(0);
    expect(collapsed.findings.some((f) => f.rules?.includes('seq-credential-read-then-use'))).toBe(true);
    expect(collapsed.detector.stats.repeats.collapsed).toBeGreaterThan(200);
  });

  it('a process re-reading a pod token 200 times (each read a sequence start): decided from its template, and a later use by its tree joins the read as in the full path', () => {
    const storm = new Storm();
    storm.exec(19_999, 19_000, LOADGEN, [LOADGEN, '--child-connect']);
    for (let i = 0; i < 200; i++) storm.open(24_000, 19_999, TOKEN);
    storm.connect(24_001, 19_999);
    const { triaged, collapsed, full } = bothPaths(storm);
    expect(triaged.stats.repeatNotes).toBeGreaterThan(190);
    expect(byId(collapsed.findings)).toEqual(byId(full.findings));
    const r = collapsed.detector.stats.repeats;
    expect(r.expanded['sequence-start'] ?? 0).toBe(0);
    expect(r.collapsed).toBeGreaterThan(190);
    // The read's mark, refreshed by every repeat, is what the sibling's connect completes.
    expect(collapsed.findings.some((f) => f.rules?.includes('seq-credential-read-then-use'))).toBe(true);
  });

  it('a token read whose claims change under the same inode (a rotation the records cannot show): the repeats after it take the full path, and the incidents are the full path\'s', () => {
    const storm = new Storm();
    storm.exec(19_999, 19_000, LOADGEN, [LOADGEN, '--child-connect']);
    for (let i = 0; i < 100; i++) storm.open(24_000, 19_999, TOKEN);
    const rotateAtMs = storm.endMs;
    for (let i = 0; i < 100; i++) storm.open(24_000, 19_999, TOKEN);
    // The watch index knows the token's inode; its claims are read again after the rotation (each path
    // gets its own fakes: the jti follows the newest event time either one has looked at).
    const fakes = (): StageOptions => {
      let newest = 0;
      // The enricher asks a WatchedObjects only objectOf(); this one answers for the token alone.
      const objects = {
        objectOf: (ev: AuditEvent): ObjectHit | null => {
            if (!ev.paths.some((p) => p.name === TOKEN)) return null;
            newest = Math.max(newest, ev.timeMs);
          return { class: 'pod-token', podUid: '0b5ab7c3-1f4e-4a5e-9c44-2b0a5d7e9f10', containerId: null, watch: TOKEN, via: 'inode', inode: 'fe:00/777', file: TOKEN };
        },
      } as unknown as WatchedObjects;
      return {
        objects,
        tokenClaims: {
          claimsFor: () => ({ jti: newest > rotateAtMs ? 'jti-after' : 'jti-before', service_account: 'default', namespace: 'default', pod: 'web', pod_uid: null, node: null, issued: null, expires: null, kind: 'bound', from: 'file' }),
        },
      };
    };
    const { collapsed, full } = bothPaths(storm, fakes);
    expect(byId(collapsed.findings)).toEqual(byId(full.findings));
    const r = collapsed.detector.stats.repeats;
    expect(r.expanded.token ?? 0).toBeGreaterThan(0);
    expect(r.collapsed).toBeGreaterThan(150);
    // The incident's latest revision names the new token, not the template's.
    const reads = collapsed.findings.filter((f) => f.token?.jti);
    expect(reads.map((f) => f.token?.jti)).toEqual(['jti-after']);
  });
});
