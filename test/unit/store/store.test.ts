import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AmbiguousIdError, openStore, StoreOpenError, type FindingStore } from '../../../src/store';
import { makeFinding } from './fixtures';

let dir: string;
let dbPath: string;
const open: FindingStore[] = [];

function store(opts?: Parameters<typeof openStore>[1]): FindingStore {
  const s = openStore(dbPath, opts);
  open.push(s);
  return s;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-store-'));
  dbPath = path.join(dir, 'state', 'findings.db');
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('opening', () => {
  it('creates the directory 0700 and the file 0600, in WAL mode with incremental auto_vacuum', () => {
    const s = store();
    expect(fs.statSync(path.dirname(dbPath)).mode & 0o777).toBe(0o700);
    expect(fs.statSync(dbPath).mode & 0o777).toBe(0o600);
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.db.pragma('auto_vacuum', { simple: true })).toBe(2);
    expect(s.db.pragma('synchronous', { simple: true })).toBe(1);
    expect(s.db.pragma('user_version', { simple: true })).toBe(1);
  });

  it('reopens an existing database without migrating it again', () => {
    store().insertFindings([makeFinding()]);
    open.pop()!.close();
    expect(store().queryFindings({})).toHaveLength(1);
  });

  it('refuses a group- or world-writable file or directory', () => {
    store().close();
    fs.chmodSync(dbPath, 0o666);
    expect(() => openStore(dbPath)).toThrow(/group- or world-writable \(mode 0666\)/);
    expect(() => openStore(dbPath, { readonly: true })).toThrow(StoreOpenError);
    fs.chmodSync(dbPath, 0o600);
    fs.chmodSync(path.dirname(dbPath), 0o777);
    expect(() => openStore(dbPath)).toThrow(/directory .* group- or world-writable/);
  });

  it('a 0644 database (and its -wal) is narrowed to 0600 with a warning (opened without a word on main)', async () => {
    store().close();
    fs.chmodSync(dbPath, 0o644);
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      store().close();
      fs.chmodSync(dbPath, 0o640);
      if (fs.existsSync(dbPath + '-wal')) fs.chmodSync(dbPath + '-wal', 0o644);
      store().close();
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(fs.statSync(dbPath).mode & 0o777).toBe(0o600);
    if (fs.existsSync(dbPath + '-wal')) expect(fs.statSync(dbPath + '-wal').mode & 0o777).toBe(0o600);
    expect(warnings.filter((w) => w.includes('(mode 0644); changed to 0600')).length).toBeGreaterThanOrEqual(1);
    expect(warnings.some((w) => w.includes('(mode 0640); changed to 0600'))).toBe(true);
    expect(store().queryFindings({})).toEqual([]);
  });

  it.skipIf(process.geteuid?.() !== 0)('refuses a file owned by another (non-root) user', () => {
    store().close();
    fs.chownSync(dbPath, 12345, 12345);
    expect(() => openStore(dbPath, { readonly: true })).toThrow(/owned by uid 12345, neither root nor this user/);
    fs.chownSync(dbPath, 0, 0);
    expect(() => openStore(dbPath, { readonly: true }).close()).not.toThrow();
  });

  it('read-only open of a missing file fails clearly and creates nothing', () => {
    expect(() => openStore(dbPath, { readonly: true })).toThrow(/no findings database at .*credwatch run/);
    expect(fs.existsSync(path.dirname(dbPath))).toBe(false);
  });

  it('refuses a file that is not SQLite and leaves its bytes alone', () => {
    fs.mkdirSync(path.dirname(dbPath), { mode: 0o700 });
    const junk = Buffer.from('this is not a database\n'.repeat(100));
    fs.writeFileSync(dbPath, junk, { mode: 0o600 });
    for (const readonly of [false, true]) {
      expect(() => openStore(dbPath, { readonly })).toThrow(/not a credwatch database/);
    }
    expect(fs.readFileSync(dbPath).equals(junk)).toBe(true);
  });

  it('quickCheck reports a damaged file as corrupt at open, without writing to it', () => {
    const s = store();
    const big = 'z'.repeat(3000);
    s.insertFindings(Array.from({ length: 300 }, () => {
      const f = makeFinding();
      f.evidence[0]!.records.push({ type: 'EXECVE', text: big });
      return f;
    }));
    s.db.pragma('wal_checkpoint(TRUNCATE)');
    open.pop()!.close();
    const bytes = fs.readFileSync(dbPath);
    for (let i = 8192; i < bytes.length - 4096; i++) bytes[i] = (bytes[i]! * 7 + 13) & 0xff;
    fs.writeFileSync(dbPath, bytes);
    expect(() => openStore(dbPath, { quickCheck: true })).toThrow(/is corrupt/);
    expect(() => openStore(dbPath, { readonly: true, quickCheck: true })).toThrow(/is corrupt/);
    expect(fs.readFileSync(dbPath).equals(bytes)).toBe(true);
  });

  it('refuses an SQLite file of another application', () => {
    fs.mkdirSync(path.dirname(dbPath), { mode: 0o700 });
    const other = new Database(dbPath);
    other.exec('CREATE TABLE t (x)');
    other.close();
    fs.chmodSync(dbPath, 0o600);
    const before = fs.readFileSync(dbPath);
    expect(() => openStore(dbPath)).toThrow(/not a credwatch database: .*another application/);
    expect(fs.readFileSync(dbPath).equals(before)).toBe(true);
  });
});

describe('findings', () => {
  it('insert is idempotent: the same id twice gives one row', () => {
    const s = store();
    const f = makeFinding();
    expect(s.insertFindings([f, f])).toBe(1);
    expect(s.insertFindings([f])).toBe(0);
    expect((s.db.prepare('SELECT count(*) n FROM findings').get() as { n: number }).n).toBe(1);
    expect((s.db.prepare('SELECT count(*) n FROM evidence').get() as { n: number }).n).toBe(1);
  });

  it('round-trips a finding exactly, evidence included', () => {
    const s = store();
    const f = makeFinding({ container: 'c'.repeat(64), evidence: 3, argv: ['a\u001b[31m', 'b\nc', '\ud800'] });
    s.insertFindings([f]);
    expect(s.getFinding(f.id)).toEqual(f);
    expect(s.queryFindings({})[0]).toEqual(f);
  });

  it('filters by since/until, severity, rule, container prefix, host and limit; newest first', () => {
    const s = store();
    const t0 = Date.parse('2026-11-01T00:00:00Z');
    const fs_ = [
      makeFinding({ id: 'a', time: t0, severity: 'low', rule: 'r1', container: 'aaaa1111' }),
      makeFinding({ id: 'b', time: t0 + 1000, severity: 'medium', rule: 'r2', container: 'bbbb2222' }),
      makeFinding({ id: 'c', time: t0 + 2000, severity: 'high', rule: 'r1', host: 'node-b' }),
      makeFinding({ id: 'd', time: t0 + 3000, severity: 'critical', rule: 'r2', container: 'aaaa3333' }),
    ];
    s.insertFindings(fs_);
    const ids = (q: Parameters<FindingStore['queryFindings']>[0]) => s.queryFindings(q).map((f) => f.id);
    expect(ids({})).toEqual(['d', 'c', 'b', 'a']);
    expect(ids({ sinceMs: t0 + 1000 })).toEqual(['d', 'c', 'b']);
    expect(ids({ untilMs: t0 + 2000 })).toEqual(['b', 'a']);
    expect(ids({ minSeverity: 'high' })).toEqual(['d', 'c']);
    expect(ids({ rule: 'r1' })).toEqual(['c', 'a']);
    expect(ids({ container: 'aaaa' })).toEqual(['d', 'a']);
    expect(ids({ container: 'bbbb2222' })).toEqual(['b']);
    expect(ids({ host: 'node-b' })).toEqual(['c']);
    expect(ids({ limit: 2 })).toEqual(['d', 'c']);
    expect(s.countFindingsSince(t0 + 2000)).toBe(2);
  });

  it('getFinding accepts a unique prefix and rejects an ambiguous one', () => {
    const s = store();
    s.insertFindings([makeFinding({ id: 'abc123' }), makeFinding({ id: 'abd456' })]);
    expect(s.getFinding('abc')?.id).toBe('abc123');
    expect(() => s.getFinding('ab')).toThrow(AmbiguousIdError);
    expect(s.getFinding('zzz')).toBeNull();
    expect(s.getFinding('')).toBeNull();
  });
});

describe('outbox and state', () => {
  it('pending is in commit order above the cursor; ack only moves forward; depth counts the rest', () => {
    const s = store();
    s.insertFindings([makeFinding({ id: 'x1' }), makeFinding({ id: 'x2' }), makeFinding({ id: 'x3' })]);
    expect(s.outbox.depth('hec')).toBe(3);
    const p = s.outbox.pending('hec', 2);
    expect(p.map((e) => e.finding.id)).toEqual(['x1', 'x2']);
    expect(p[0]!.finding.evidence).toHaveLength(1);
    s.outbox.ack('hec', p[1]!.seq);
    expect(s.outbox.depth('hec')).toBe(1);
    s.outbox.ack('hec', p[0]!.seq); // late ack of an older batch
    expect(s.outbox.depth('hec')).toBe(1);
    expect(s.outbox.depth('collector')).toBe(3);
    expect(s.outbox.outputs().map((o) => o.output)).toEqual(['hec']);
  });

  it('state keeps the last value per key', () => {
    const s = store();
    expect(s.state.get('k')).toBeUndefined();
    s.state.set('k', '1');
    s.state.set('k', '2');
    expect(s.state.get('k')).toBe('2');
    expect(store({ readonly: true }).state.get('k')).toBe('2');
  });
});

describe('read-only connection', () => {
  it('sees committed writes and cannot write', () => {
    const w = store();
    const r = store({ readonly: true });
    w.insertFindings([makeFinding({ id: 'one' })]);
    expect(r.queryFindings({}).map((f) => f.id)).toEqual(['one']);
    expect(() => r.insertFindings([makeFinding()])).toThrow();
    expect(() => r.state.set('k', 'v')).toThrow();
  });

  it('reads while a writer holds an open write transaction', () => {
    const w = store();
    const r = store({ readonly: true, busyTimeoutMs: 100 });
    w.insertFindings([makeFinding({ id: 'committed' })]);
    w.db.exec('BEGIN IMMEDIATE');
    w.db.prepare("INSERT INTO agent_state VALUES ('x', 'y', 0)").run();
    const t = Date.now();
    expect(r.queryFindings({}).map((f) => f.id)).toEqual(['committed']);
    expect(Date.now() - t).toBeLessThan(100);
    w.db.exec('COMMIT');
  });
});
