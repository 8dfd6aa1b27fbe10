import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeStatusSnapshot, type StatusSnapshot } from '../../../src/daemon/status-snapshot';
import { openStore, type FindingStore } from '../../../src/store';
import { makeFinding } from '../../unit/store/fixtures';
import { builtCliExists, cleanupTempDbs, cli, tempDb } from './helpers';

const built = builtCliExists();
afterAll(cleanupTempDbs);
if (!built) console.log('skipping CLI tests: dist/ is missing; run `npx tsc -p tsconfig.build.json && node scripts/copy-assets.js` first');

function snapshot(over: Partial<StatusSnapshot> = {}): StatusSnapshot {
  const now = Date.now();
  return {
    pid: process.pid, // a live process stands in for the daemon
    startedMs: now - 3_720_000,
    updatedMs: now,
    version: '0.1.0',
    mode: 'unicast',
    immutable: false,
    kernel: { enabled: 1, pid: process.pid, backlog: 3, backlogLimit: 8192, lost: 7, failure: 1, rateLimit: 0, backlogWaitTime: 60000 },
    rates: { recordsPerSec: 1234.5, eventsPerSec: 321 },
    counters: { records: 10 },
    drops: { enobufs: 2, queue_overflow: 0, ship_set_aside_too_large: 1 },
    bounded: { cut: 3, set_aside: 1 },
    outbox: { collector: 0 },
    lastShip: { collector: now - 5000 },
    findingsToday: 2,
    ...over,
  };
}

describe.skipIf(!built)('credwatch status', () => {
  let t: ReturnType<typeof tempDb>;
  let s: FindingStore;
  beforeAll(() => {
    t = tempDb();
    s = openStore(t.db);
    s.insertFindings([makeFinding(), makeFinding(), makeFinding({ time: Date.now() - 3 * 86_400_000 })]);
    const pending = s.outbox.pending('collector', 1);
    s.outbox.ack('collector', pending[0]!.seq);
  });
  afterAll(() => {
    s.close();
    t.cleanup();
  });

  it('without a snapshot: not running, findings today and outbox from the db, exit 0', () => {
    const r = cli(['status', '--db', t.db]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/daemon: +not running \(no status snapshot/);
    expect(r.stdout).toContain('findings today (UTC): 2');
    expect(r.stdout).toMatch(/outbox depth: +collector 2/);
  });

  it('with a fresh snapshot from a live pid: running, with kernel status, rates, drops, uptime', () => {
    writeStatusSnapshot(s.state, snapshot());
    const r = cli(['status', '--db', t.db]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`daemon: +running \\(pid ${process.pid}, up 1h 2m, version 0\\.1\\.0, mode unicast\\)`));
    expect(r.stdout).toMatch(/kernel audit: +enabled 1, pid \d+ \(credwatch\), backlog 3\/8192, lost 7/);
    expect(r.stdout).toContain('1234.5 records/s, 321.0 events/s');
    expect(r.stdout).toContain('enobufs 2, queue_overflow 0');
    expect(r.stdout).toMatch(/^size bounds: +3 findings cut to the size cap \(marked truncated\), 1 set aside .*; 0 texts cut for matching, 0 events over the time budget$/m);
    expect(r.stdout).toMatch(/last ship: +collector \d{4}-.*\(\d+s ago\)/);

    const j = cli(['status', '--json', '--db', t.db]);
    const rep = JSON.parse(j.stdout) as Record<string, unknown>;
    expect(rep).toMatchObject({ running: true, findingsToday: 2, outbox: { collector: 2 } });
    expect((rep.snapshot as StatusSnapshot).kernel!.lost).toBe(7);
    expect(rep.uptimeMs).toBeGreaterThanOrEqual(3_720_000);
  });

  it('a stale snapshot or a dead pid means not running, with the snapshot age', () => {
    writeStatusSnapshot(s.state, snapshot({ updatedMs: Date.now() - 65_000 }));
    let r = cli(['status', '--db', t.db]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/not running \(pid \d+ exists but its last snapshot is 1m \d+s old/);

    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeStatusSnapshot(s.state, snapshot({ pid: Number(dead.stdout) }));
    r = cli(['status', '--db', t.db]);
    expect(r.stdout).toMatch(/not running \(pid \d+ is gone; last snapshot \d+s ago\)/);
    expect(r.stdout).not.toContain('kernel audit');
  });

  it('reports an immutable audit configuration', () => {
    writeStatusSnapshot(s.state, snapshot({ immutable: true, kernel: { ...snapshot().kernel!, enabled: 2 } }));
    const r = cli(['status', '--db', t.db]);
    expect(r.stdout).toContain('enabled 2 (immutable)');
    expect(r.stdout).toContain('audit rules are immutable');
  });

  it('says whether io_uring operations are audited, from the agent signals', () => {
    const sig = (kind: string) => `credwatch_stream_signals_total{kind="${kind}"}`;
    writeStatusSnapshot(s.state, snapshot({ counters: { [sig('io_uring_audit_unavailable')]: 1 } }));
    expect(cli(['status', '--db', t.db]).stdout).toMatch(/io_uring: +NOT audited: the kernel has no io_uring audit filter list/);
    writeStatusSnapshot(s.state, snapshot({ counters: { [sig('io_uring_audited')]: 1, [sig('uring_unknown_op')]: 3 } }));
    expect(cli(['status', '--db', t.db]).stdout).toMatch(/io_uring: +audited .*unknown ops seen 3/);
    writeStatusSnapshot(s.state, snapshot());
    expect(cli(['status', '--db', t.db]).stdout).not.toContain('io_uring');
  });

  it('shows repeat collapse when the reader sends repeat notes: notes, templates, decided, sent the full path, lost', () => {
    const rep = (outcome: string) => `credwatch_repeats_total{outcome="${outcome}"}`;
    const counters = { [rep('noted')]: 5000, [rep('template')]: 3, [rep('template_evicted')]: 1, [rep('skipped')]: 2, [rep('collapsed')]: 4990, [rep('expanded_process')]: 6, [rep('expanded_parents')]: 4 };
    writeStatusSnapshot(s.state, snapshot({ counters, drops: { repeat_template_unknown: 0 } }));
    expect(cli(['status', '--db', t.db]).stdout).toMatch(
      /^repeats: +5000 events sent as repeat notes of 3 templates \(1 evicted, 2 not eligible\); 4990 decided from their template, 10 sent the full path, 0 lost \(template unknown\)$/m,
    );
    writeStatusSnapshot(s.state, snapshot());
    expect(cli(['status', '--db', t.db]).stdout).not.toContain('repeats:');
  });

  it('shows the hostile-input guards on the size bounds line, and a snapshot without `bounded` as zeros', () => {
    const sig = (kind: string) => `credwatch_stream_signals_total{kind="${kind}"}`;
    writeStatusSnapshot(s.state, snapshot({ counters: { [sig('match_text_cut')]: 23, [sig('event_over_budget')]: 2 } }));
    expect(cli(['status', '--db', t.db]).stdout).toMatch(/^size bounds: .*; 23 texts cut for matching, 2 events over the time budget$/m);
    const old: Partial<StatusSnapshot> = snapshot();
    delete old.bounded;
    s.state.set('status', JSON.stringify(old));
    expect(cli(['status', '--db', t.db]).stdout).toMatch(/^size bounds: +0 findings cut to the size cap .*, 0 set aside/m);
  });
});
