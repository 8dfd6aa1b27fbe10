import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchWriter, openStore, type FindingStore } from '../../../src/store';
import type { Finding } from '../../../src/model/finding';
import { makeFinding } from './fixtures';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** A sink that fails while `down` is set, like a database on a full disk. */
function flakySink() {
  const rows = new Map<string, Finding>();
  const sink = {
    down: false,
    calls: 0,
    rows,
    insertFindings(fs_: Finding[]): number {
      sink.calls++;
      if (sink.down) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      let n = 0;
      for (const f of fs_) {
        if (rows.has(f.id)) continue;
        rows.set(f.id, f);
        n++;
      }
      return n;
    },
  };
  return sink;
}

describe('BatchWriter', () => {
  it('does not write on add(); flushes after the interval in one call', async () => {
    const sink = flakySink();
    const w = new BatchWriter(sink, { flushIntervalMs: 30 });
    for (let i = 0; i < 10; i++) w.add(makeFinding());
    expect(sink.calls).toBe(0);
    await until(() => sink.rows.size === 10);
    expect(sink.calls).toBe(1);
    expect(w.counters).toMatchObject({ accepted: 10, written: 10, flushes: 1, buffered: 0, writeErrors: 0 });
    w.close();
  });

  it('flushes on the next event-loop turn once maxBatch is reached, in batches of maxBatch', async () => {
    const sink = flakySink();
    const w = new BatchWriter(sink, { flushIntervalMs: 60_000, maxBatch: 100 });
    for (let i = 0; i < 250; i++) w.add(makeFinding());
    expect(sink.calls).toBe(0);
    await sleep(5);
    expect(sink.rows.size).toBe(250);
    expect(sink.calls).toBe(3);
    w.close();
  });

  it('counts duplicates instead of writing them twice', () => {
    const sink = flakySink();
    const w = new BatchWriter(sink);
    const f = makeFinding();
    w.add(f);
    w.add(f);
    w.flush();
    expect(w.counters).toMatchObject({ written: 1, duplicates: 1 });
    w.close();
  });

  it('keeps findings while writes fail, counts errors and drops beyond the bound, then recovers', async () => {
    const sink = flakySink();
    const errors: string[] = [];
    const w = new BatchWriter(sink, { flushIntervalMs: 5, maxBatch: 10, maxBuffered: 100, retryIntervalMs: 20, maxRetryIntervalMs: 40, onError: (e) => errors.push(e.message) });
    sink.down = true;
    const added = Array.from({ length: 130 }, () => makeFinding());
    for (const f of added) w.add(f);
    await until(() => w.counters.writeErrors >= 2);
    expect(w.counters).toMatchObject({ dropped: 30, buffered: 100, lastError: 'SQLITE_FULL' });
    expect(errors[0]).toMatch(/disk is full/);
    sink.down = false;
    await until(() => w.counters.buffered === 0);
    // The newest 100 survived, in order.
    expect([...sink.rows.keys()]).toEqual(added.slice(30).map((f) => f.id));
    expect(w.counters.lastError).toBeNull();
    w.close();
  });

  it('an incident revision waiting to be written is replaced by the later one: one slot per incident, nothing else pushed out', async () => {
    const sink = flakySink();
    const w = new BatchWriter(sink, { flushIntervalMs: 5, maxBatch: 10, maxBuffered: 20, retryIntervalMs: 20, maxRetryIntervalMs: 40 });
    sink.down = true;
    const other = Array.from({ length: 15 }, () => makeFinding());
    for (const f of other) w.add(f);
    const storm = makeFinding();
    // 200 updates of one incident while the disk is full, in any order of arrival (a late lower one too)
    for (let r = 1; r <= 200; r++) w.add({ ...storm, revision: r, count: r });
    w.add({ ...storm, revision: 50, count: 50 });
    await until(() => w.counters.writeErrors >= 1);
    expect(w.counters).toMatchObject({ buffered: 16, dropped: 0, coalesced: 200 });
    sink.down = false;
    await until(() => w.counters.buffered === 0);
    expect(sink.rows.get(storm.id)).toMatchObject({ revision: 200, count: 200 });
    expect(other.every((f) => sink.rows.has(f.id))).toBe(true);
    // Written: a new revision starts a new slot and is written in turn.
    w.add({ ...storm, revision: 201, count: 201 });
    expect(w.counters.buffered).toBe(1);
    w.close();
  });

  it('close() reports failure when findings could not be written', () => {
    const sink = flakySink();
    const w = new BatchWriter(sink);
    w.add(makeFinding());
    sink.down = true;
    expect(w.close()).toBe(false);
    expect(w.counters.buffered).toBe(1);
  });
});

// A real full disk: the database on a 1 MB tmpfs that a filler file fills up. Whether we may mount
// is probed at collection time (mount + umount at once) so that nothing stays mounted when this test
// is filtered out; the real mount happens in beforeAll and is undone in afterAll.
function mountTmpfs(dir: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', dir], { stdio: 'pipe' });
}
let canMount = false;
let mountError = 'not root';
if (process.getuid?.() === 0) {
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-full-probe-'));
  try {
    mountTmpfs(probe);
    execFileSync('umount', [probe]);
    canMount = true;
  } catch (err) {
    mountError = String((err as { stderr?: Buffer }).stderr ?? err).trim();
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
}
if (!canMount) console.log(`skipping the tmpfs disk-full test: cannot mount a tmpfs (${mountError})`);

describe('BatchWriter on a real full disk (1 MB tmpfs)', () => {
  let store: FindingStore | undefined;
  let mnt = '';
  let mounted = false;

  beforeAll(() => {
    if (!canMount) return;
    mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-full-'));
    mountTmpfs(mnt);
    mounted = true;
    store = openStore(path.join(mnt, 'state', 'findings.db'));
  });
  afterAll(() => {
    store?.close();
    if (mounted) execFileSync('umount', [mnt]);
    if (mnt) fs.rmSync(mnt, { recursive: true, force: true });
  });

  it.skipIf(!canMount)('counts SQLITE_FULL, keeps running, and stores everything once space returns', async () => {
    const filler = path.join(mnt, 'filler');
    const w = new BatchWriter(store!, { flushIntervalMs: 5, maxBatch: 20, retryIntervalMs: 20, maxRetryIntervalMs: 50 });
    w.add(makeFinding({ id: 'before' }));
    w.flush();
    // Fill the file system to the last byte.
    const fd = fs.openSync(filler, 'w');
    const chunk = Buffer.alloc(4096, 1);
    try {
      for (;;) fs.writeSync(fd, chunk);
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      fs.closeSync(fd);
    }
    const big = 'y'.repeat(8000);
    const during = Array.from({ length: 60 }, (_, i) => {
      const f = makeFinding({ id: `during${i}` });
      f.evidence[0]!.records.push({ type: 'EXECVE', text: big });
      return f;
    });
    for (const f of during) w.add(f);
    await until(() => w.counters.writeErrors >= 2);
    expect(w.counters.lastError).toBe('SQLITE_FULL');
    expect(w.counters.buffered).toBeGreaterThan(0);
    expect(w.counters.dropped).toBe(0);

    fs.rmSync(filler);
    await until(() => w.counters.buffered === 0);
    expect(w.counters.lastError).toBeNull();
    const ids = new Set(store!.queryFindings({}).map((f) => f.id));
    expect(ids.size).toBe(61);
    for (const f of during) expect(ids.has(f.id)).toBe(true);
    expect(store!.db.pragma('integrity_check', { simple: true })).toBe('ok');
    w.close();
  });
});
