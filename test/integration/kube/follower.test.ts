/**
 * KubeAuditFollower on real files written while it follows them: appends, partial lines, rename
 * rotation, copytruncate, restart from the StateStore, rotation while stopped, bad and huge lines.
 * Every scenario asserts exactly-once delivery by auditID.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeAuditFollower, kubeAuditStateKey, type KubeAuditFollowerOptions } from '../../../src/sources/kube-audit';
import type { StateStore } from '../../../src/store/types';

class MemoryState implements StateStore {
  readonly map = new Map<string, string>();
  get(key: string): string | undefined {
    return this.map.get(key);
  }
  set(key: string, value: string): void {
    this.map.set(key, value);
  }
}

function eventLine(id: string): string {
  return `${JSON.stringify({
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: id,
    stage: 'ResponseComplete',
    requestURI: `/api/v1/namespaces/default/secrets/${id}`,
    verb: 'get',
    user: { username: 'alice', groups: ['system:authenticated'] },
    sourceIPs: ['10.0.0.1'],
    objectRef: { resource: 'secrets', namespace: 'default', name: id, apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: 200 },
    requestReceivedTimestamp: '2026-01-10T10:00:00.000000Z',
  })}\n`;
}

function ids(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
}

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let dir: string;
let logPath: string;
const followers: KubeAuditFollower[] = [];

function follow(seen: string[], extra: Partial<KubeAuditFollowerOptions> = {}): KubeAuditFollower {
  const f = new KubeAuditFollower({ path: logPath, pollMs: 20, onEvent: (ev) => seen.push(ev.auditID), ...extra });
  followers.push(f);
  return f;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-kube-'));
  logPath = path.join(dir, 'kube-apiserver-audit.log');
});

afterEach(async () => {
  for (const f of followers.splice(0)) await f.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('KubeAuditFollower', () => {
  it('delivers lines appended while following, in order, exactly once', async () => {
    fs.writeFileSync(logPath, ids('pre', 3).map(eventLine).join(''));
    const seen: string[] = [];
    const f = follow(seen);
    await f.start();
    expect(seen).toEqual(ids('pre', 3));
    for (const id of ids('live', 20)) fs.appendFileSync(logPath, eventLine(id));
    await waitFor(() => seen.length === 23, '23 events');
    expect(seen).toEqual([...ids('pre', 3), ...ids('live', 20)]);
    expect(f.stats).toMatchObject({ lines: 23, events: 23, badLines: 0, rotations: 0, truncations: 0 });
    expect(f.stats.offset).toBe(fs.statSync(logPath).size);
  });

  it('waits for a file that does not exist yet', async () => {
    const seen: string[] = [];
    const f = follow(seen);
    await f.start();
    fs.writeFileSync(logPath, eventLine('late-0'));
    await waitFor(() => seen.length === 1, 'the first event');
    expect(seen).toEqual(['late-0']);
  });

  it('never parses half a line: a partial last line is delivered once it is completed', async () => {
    const line = eventLine('partial-0');
    fs.writeFileSync(logPath, eventLine('whole-0') + line.slice(0, 40));
    const seen: string[] = [];
    const f = follow(seen, { watch: false, pollMs: 60_000 });
    await f.start();
    await f.poll();
    expect(seen).toEqual(['whole-0']);
    expect(f.stats.badLines).toBe(0);
    fs.appendFileSync(logPath, line.slice(40, 100));
    await f.poll();
    expect(seen).toEqual(['whole-0']);
    fs.appendFileSync(logPath, line.slice(100));
    await f.poll();
    expect(seen).toEqual(['whole-0', 'partial-0']);
    expect(f.stats).toMatchObject({ lines: 2, events: 2, badLines: 0 });
  });

  it('survives rename rotation, finishing the old file (including writes after the rename) first', async () => {
    fs.writeFileSync(logPath, ids('old', 5).map(eventLine).join(''));
    const seen: string[] = [];
    const f = follow(seen, { watch: false, pollMs: 60_000 });
    await f.start();
    expect(seen).toEqual(ids('old', 5));
    // The writer still holds the old file open across the rename (logrotate `create` + late reopen).
    const oldFd = fs.openSync(logPath, 'a');
    fs.renameSync(logPath, `${logPath}.1`);
    fs.writeSync(oldFd, ids('tail', 2).map(eventLine).join(''));
    fs.closeSync(oldFd);
    fs.writeFileSync(logPath, ids('new', 4).map(eventLine).join(''));
    await f.poll();
    expect(seen).toEqual([...ids('old', 5), ...ids('tail', 2), ...ids('new', 4)]);
    expect(f.stats.rotations).toBe(1);
    fs.appendFileSync(logPath, eventLine('new-4'));
    await f.poll();
    expect(seen).toEqual([...ids('old', 5), ...ids('tail', 2), ...ids('new', 5)]);
  });

  it('follows a live rename rotation driven by fs.watch and polling', async () => {
    const seen: string[] = [];
    const f = follow(seen);
    fs.writeFileSync(logPath, '');
    await f.start();
    const expected: string[] = [];
    for (let gen = 0; gen < 3; gen++) {
      for (const id of ids(`g${gen}`, 10)) {
        fs.appendFileSync(logPath, eventLine(id));
        expected.push(id);
      }
      await waitFor(() => seen.length === expected.length, `generation ${gen}`);
      fs.renameSync(logPath, `${logPath}.${gen + 1}`);
      fs.writeFileSync(logPath, '');
      await waitFor(() => f.stats.rotations === gen + 1, `rotation ${gen + 1}`);
    }
    expect(seen).toEqual(expected);
  });

  it('restarts at 0 after copytruncate, also when the file regrew past the old offset', async () => {
    fs.writeFileSync(logPath, ids('before', 4).map(eventLine).join(''));
    const seen: string[] = [];
    const f = follow(seen, { watch: false, pollMs: 60_000 });
    await f.start();
    expect(seen).toEqual(ids('before', 4));
    // copytruncate: copy, then truncate in place; the writer continues at offset 0.
    fs.copyFileSync(logPath, `${logPath}.1`);
    fs.truncateSync(logPath, 0);
    fs.appendFileSync(logPath, eventLine('after-0'));
    await f.poll();
    expect(seen).toEqual([...ids('before', 4), 'after-0']);
    expect(f.stats.truncations).toBe(1);
    // Truncate again and write MORE than before before the follower looks: size alone cannot tell.
    fs.truncateSync(logPath, 0);
    fs.appendFileSync(logPath, ids('longer', 6).map(eventLine).join(''));
    await f.poll();
    expect(seen).toEqual([...ids('before', 4), 'after-0', ...ids('longer', 6)]);
    expect(f.stats.truncations).toBe(2);
  });

  it('resumes after a restart at the persisted offset, re-reading an unfinished line', async () => {
    const state = new MemoryState();
    fs.writeFileSync(logPath, ids('a', 3).map(eventLine).join(''));
    const seen: string[] = [];
    const first = follow(seen, { state, watch: false });
    await first.start();
    const pending = eventLine('a-3');
    fs.appendFileSync(logPath, pending.slice(0, 50));
    await first.poll();
    await first.stop();
    const saved = JSON.parse(state.get(kubeAuditStateKey(logPath))!) as { inode: number; offset: number };
    expect(saved.inode).toBe(fs.statSync(logPath).ino);
    expect(saved.offset).toBe(ids('a', 3).map(eventLine).join('').length);

    fs.appendFileSync(logPath, pending.slice(50) + ids('b', 2).map(eventLine).join(''));
    const second = follow(seen, { state, watch: false });
    await second.start();
    expect(seen).toEqual([...ids('a', 4), ...ids('b', 2)]);
    expect(second.stats.events).toBe(3);
  });

  it('after a rotation while stopped, finishes the rotated file from the saved offset, then reads the new one', async () => {
    const state = new MemoryState();
    fs.writeFileSync(logPath, ids('x', 3).map(eventLine).join(''));
    const seen: string[] = [];
    const first = follow(seen, { state, watch: false });
    await first.start();
    await first.stop();
    fs.appendFileSync(logPath, ids('x-unread', 2).map(eventLine).join(''));
    fs.renameSync(logPath, `${logPath}.1`);
    fs.writeFileSync(logPath, ids('y', 2).map(eventLine).join(''));
    const second = follow(seen, { state, watch: false });
    await second.start();
    expect(seen).toEqual([...ids('x', 3), ...ids('x-unread', 2), ...ids('y', 2)]);
    expect(second.stats.rotations).toBe(1);
    await second.stop();
    const saved = JSON.parse(state.get(kubeAuditStateKey(logPath))!) as { inode: number; offset: number };
    expect(saved).toEqual({ inode: fs.statSync(logPath).ino, offset: fs.statSync(logPath).size });
  });

  it('starts from 0 when the saved inode is gone and no rotated file matches', async () => {
    const state = new MemoryState();
    state.set(kubeAuditStateKey(logPath), JSON.stringify({ inode: 1, offset: 999_999 }));
    fs.writeFileSync(logPath, ids('fresh', 2).map(eventLine).join(''));
    const seen: string[] = [];
    const f = follow(seen, { state, watch: false });
    await f.start();
    expect(seen).toEqual(ids('fresh', 2));
  });

  it('counts and skips bad lines (broken JSON, wrong types, array, empty, 1 MB, 10 MB) without losing the next good line', async () => {
    const bad: string[] = [];
    const seen: string[] = [];
    const lines = [
      eventLine('ok-0'),
      '{"kind":"Event","auditID":"broken\n',
      `${JSON.stringify({ kind: 'Event', auditID: 'wrong-type', stage: 'ResponseComplete', verb: 7, requestURI: '/', user: {} })}\n`,
      '[1,2,3]\n',
      '\n',
      eventLine('ok-1'),
      `${'x'.repeat(1024 * 1024)}\n`,
      eventLine('ok-2'),
    ];
    fs.writeFileSync(logPath, lines.join(''));
    // A 10 MB line with no newline for a while: the follower must not hold it.
    const huge = Buffer.alloc(10 * 1024 * 1024, 0x41);
    fs.appendFileSync(logPath, huge);
    const f = follow(seen, { watch: false, onBadLine: (b) => bad.push(b.error), maxLineBytes: 2 * 1024 * 1024 });
    await f.start();
    await f.poll();
    expect(seen).toEqual(['ok-0', 'ok-1', 'ok-2']);
    fs.appendFileSync(logPath, `\n${eventLine('ok-3')}`);
    await f.poll();
    expect(seen).toEqual(['ok-0', 'ok-1', 'ok-2', 'ok-3']);
    // The blank line is counted as empty, not bad (and not reported as a bad line).
    expect(f.stats).toMatchObject({ events: 4, badLines: 5, emptyLines: 1, oversizeLines: 1 });
    expect(bad[0]).toMatch(/invalid JSON/);
    expect(bad[1]).toMatch(/^verb: expected string/);
    expect(bad[2]).toMatch(/expected a JSON object, got array/);
    expect(bad[4]).toMatch(/exceeds the line cap/);
    expect(bad).not.toContain('empty line');
  });

  it('salvages a RequestResponse event too large to hold (cluster-wide secret list with a 6 MB responseObject)', async () => {
    const items = Array.from({ length: 3000 }, (_, i) => ({ metadata: { name: `s${i}` }, data: { key: 'QUJD'.repeat(500) } }));
    const huge = JSON.stringify({
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level: 'RequestResponse',
      auditID: 'big-list',
      stage: 'ResponseComplete',
      requestURI: '/api/v1/secrets?limit=500',
      verb: 'list',
      user: { username: 'mallory', groups: ['system:authenticated'] },
      sourceIPs: ['10.1.2.3'],
      userAgent: 'kubectl/v1.30.2 (linux/amd64) kubernetes/3968350',
      objectRef: { resource: 'secrets', apiVersion: 'v1' },
      responseStatus: { metadata: {}, code: 200 },
      responseObject: { kind: 'SecretList', items },
      requestReceivedTimestamp: '2026-01-10T10:00:00.500000Z',
      stageTimestamp: '2026-01-10T10:00:01.000000Z',
      annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': 'RBAC' },
    });
    expect(huge.length).toBeGreaterThan(6_000_000);
    fs.writeFileSync(logPath, `${huge}\n${eventLine('after-big')}`);
    const got: import('../../../src/kube/event').KubeAuditEvent[] = [];
    const f = new KubeAuditFollower({ path: logPath, watch: false, onEvent: (ev) => got.push(ev) });
    followers.push(f);
    await f.start();
    expect(got.map((e) => e.auditID)).toEqual(['big-list', 'after-big']);
    expect(got[0]).toMatchObject({ verb: 'list', responseCode: 200, requestObject: null, timeMs: Date.parse('2026-01-10T10:00:00.500Z') });
    expect(got[0]!.annotations['authorization.k8s.io/decision']).toBe('allow');
    expect(JSON.stringify(got[0])).not.toContain('QUJD');
    expect(f.stats).toMatchObject({ oversizeLines: 1, salvagedLines: 1, badLines: 0, events: 2 });
  });

  it('logs bad lines at a bounded rate', async () => {
    const warnings: object[] = [];
    const logger = { warn: (o: object) => warnings.push(o) };
    fs.writeFileSync(logPath, 'garbage\n'.repeat(500) + eventLine('ok'));
    const seen: string[] = [];
    const f = follow(seen, { watch: false, logger, now: () => 1_000_000 });
    await f.start();
    expect(seen).toEqual(['ok']);
    expect(f.stats.badLines).toBe(500);
    expect(warnings.length).toBe(1);
  });
});
