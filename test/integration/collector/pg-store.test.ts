/**
 * The PostgreSQL CollectorStore against a real PostgreSQL 15 (Debian's binaries, started here on a
 * loopback port): migrations, idempotent ingest per (agent, id), revisions, all-or-nothing batches,
 * daily partitions and retention by DROP, keyset paging (the same pages as the SQLite store), two
 * stores (= two replicas) writing the same keys at once, and a database that goes down and comes back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFinding, ingestedFindingSchema, type IngestedFinding } from '../../../src/collector/finding-schema';
import { DAY_MS, partitionName } from '../../../src/collector/pg-partitions';
import { MIGRATIONS } from '../../../src/collector/pg-schema';
import { openPgCollectorStore, type PgCollectorStore } from '../../../src/collector/pg-store';
import { StoreUnavailableError, openCollectorStore, queryAll } from '../../../src/collector/store';
import { startPostgres, unavailableReason, type TestPostgres } from '../../helpers/postgres.cjs';
import { makeFinding } from '../../unit/ship/support';

const why = unavailableReason();
if (why) console.warn(`PostgreSQL store tests skipped: ${why}`);

const NOW = Date.UTC(2026, 11, 2, 12, 0, 0);
let pg: TestPostgres;
let dbCount = 0;

const enc = (fs: IngestedFinding[]) => fs.map(encodeFinding);
const finding = (over: Record<string, unknown> = {}): IngestedFinding => ingestedFindingSchema.parse({ ...makeFinding(), time: new Date(NOW - 3_600_000).toISOString(), ...over });

async function freshStore(retentionDays = 30): Promise<{ store: PgCollectorStore; db: string }> {
  const db = `store_${++dbCount}`;
  pg.createDatabase(db);
  const store = await openPgCollectorStore({ ...pg.connection(db), max: 4 }, { retentionDays, aheadDays: 3, now: () => NOW });
  return { store, db };
}

const one = (sql: string, db: string): string => pg.psql(sql, db).trim();

describe.skipIf(why !== null)('PostgreSQL collector store', () => {
  beforeAll(async () => {
    pg = await startPostgres({ fsync: false });
  });
  afterAll(async () => {
    await pg?.destroy();
  });

  it('migrates a fresh database once, and refuses one migrated by a newer collector', async () => {
    const { store, db } = await freshStore();
    await store.close();
    const again = await openPgCollectorStore(pg.connection(db), { retentionDays: 30, aheadDays: 3, now: () => NOW });
    await again.close();
    expect(one('SELECT string_agg(version::text, \',\') FROM credwatch_schema_migrations', db)).toBe(MIGRATIONS.map((m) => m.version).join(','));
    pg.psql("INSERT INTO credwatch_schema_migrations (version, description) VALUES (999, 'from the future')", db);
    await expect(openPgCollectorStore(pg.connection(db), { retentionDays: 30, aheadDays: 3, now: () => NOW })).rejects.toThrow(/version 999, newer than this collector/);
  });

  it('stores a batch once per (agent, id): a resend is all duplicates, another agent has its own', async () => {
    const { store, db } = await freshStore();
    try {
      const batch = [finding(), finding(), finding()];
      expect(await store.ingest('a', enc(batch), NOW)).toEqual({ accepted: 3, replaced: 0, duplicates: 0 });
      expect(await store.ingest('a', enc(batch), NOW)).toEqual({ accepted: 0, replaced: 0, duplicates: 3 });
      expect(await store.ingest('b', enc(batch), NOW)).toEqual({ accepted: 3, replaced: 0, duplicates: 0 });
      expect(one('SELECT count(*) FROM fleet_findings', db)).toBe('6');
      expect(one('SELECT count(DISTINCT (agent, id)) FROM fleet_findings', db)).toBe('6');
      const agents = await store.agents();
      expect(agents.find((a) => a.agent === 'a')).toMatchObject({ batches: 2, findings: 3, duplicates: 3, lastHost: 'node-a' });
    } finally {
      await store.close();
    }
  });

  it('stores each finding’s JSON text byte for byte (quotes, backslashes, non-ASCII, lone surrogates, NUL escapes)', async () => {
    const { store, db } = await freshStore();
    try {
      const hostile = ['say "hi" \\ \\"', 'ünïcödé ✓ 𝄞', '\ud800 lone \udc00', 'nul \u0000 and tab \t', '{"not":"an object"}'];
      const batch = hostile.map((title) => finding({ title }));
      expect(await store.ingest('a', enc(batch), NOW)).toMatchObject({ accepted: batch.length });
      const stored = new Map((await queryAll(store, {})).map((f) => [f.id, f.title]));
      expect(batch.map((f) => stored.get(f.id))).toEqual(hostile);
      // The text itself, not just an equal value: what JSON.stringify made of the parsed finding.
      const texts = new Set(one("SELECT string_agg(encode(convert_to(json, 'UTF8'), 'base64'), ',') FROM fleet_findings", db).replace(/\n/g, '').split(','));
      for (const f of batch) expect(texts.has(Buffer.from(JSON.stringify(f)).toString('base64'))).toBe(true);
      expect(one('SELECT count(*) FROM fleet_findings WHERE bytes = octet_length(json)', db)).toBe(String(batch.length));
    } finally {
      await store.close();
    }
  });

  it('keeps the highest revision (absent = 0), also when a resend carries another time', async () => {
    const { store, db } = await freshStore();
    try {
      const base = finding({ id: 'inc-1' });
      expect(await store.ingest('a', enc([base]), NOW)).toMatchObject({ accepted: 1 });
      expect(await store.ingest('a', enc([{ ...base, revision: 0, title: 'same revision' }]), NOW)).toMatchObject({ duplicates: 1 });
      expect(await store.ingest('a', enc([{ ...base, revision: 2, title: 'rev 2' }]), NOW)).toMatchObject({ replaced: 1 });
      expect(await store.ingest('a', enc([{ ...base, revision: 1, title: 'late rev 1' }]), NOW)).toMatchObject({ duplicates: 1 });
      // A higher revision dated two days earlier moves to that day's partition: still one row.
      const earlier = new Date(NOW - 2 * DAY_MS).toISOString();
      expect(await store.ingest('a', enc([{ ...base, revision: 3, title: 'rev 3', time: earlier }]), NOW)).toMatchObject({ replaced: 1 });
      expect(one("SELECT count(*) || ' ' || max(revision) || ' ' || max(tableoid::regclass::text) FROM fleet_findings WHERE id = 'inc-1'", db)).toBe(`1 3 ${partitionName(NOW - 2 * DAY_MS - ((NOW - 2 * DAY_MS) % DAY_MS))}`);
      const [stored] = await queryAll(store, {});
      expect(stored).toMatchObject({ id: 'inc-1', revision: 3, title: 'rev 3' });
      // In one batch, the highest of several copies wins, counted as the SQLite store counts it.
      const copies = [{ ...base, id: 'inc-2', revision: 1 }, { ...base, id: 'inc-2', revision: 4, title: 'rev 4' }, { ...base, id: 'inc-2', revision: 2 }];
      const r = await store.ingest('a', enc(copies), NOW);
      expect(r).toEqual({ accepted: 1, replaced: 1, duplicates: 1 });
      const dir = mkdtempSync(join(tmpdir(), 'credwatch-pg-count-'));
      const lite = openCollectorStore(join(dir, 'c.db'));
      try {
        expect(await lite.ingest('a', enc(copies), NOW)).toEqual(r);
      } finally {
        await lite.close();
        rmSync(dir, { recursive: true, force: true });
      }
      expect((await queryAll(store, {})).find((f) => f.id === 'inc-2')).toMatchObject({ revision: 4, title: 'rev 4' });
    } finally {
      await store.close();
    }
  });

  it('stores a batch all or nothing: one row the database refuses leaves nothing of it', async () => {
    const { store, db } = await freshStore();
    try {
      pg.psql("ALTER TABLE fleet_findings ADD CONSTRAINT test_no_evil CHECK (rule <> 'evil')", db);
      const good = [finding(), finding()];
      await expect(store.ingest('a', enc([...good, finding({ rule: 'evil' })]), NOW)).rejects.toThrow(/test_no_evil/);
      expect(one('SELECT count(*) FROM fleet_findings', db)).toBe('0');
      expect(one('SELECT count(*) FROM fleet_finding_keys', db)).toBe('0');
      expect(await store.ingest('a', enc(good), NOW)).toMatchObject({ accepted: 2 });
    } finally {
      await store.close();
    }
  });

  it('keeps the fleet join’s sightings like the SQLite store: in the batch’s transaction, highest revision, by jti, gone with retention', async () => {
    const { store: pgStore, db } = await freshStore(10);
    const dir = mkdtempSync(join(tmpdir(), 'credwatch-pg-sightings-'));
    const sqlite = openCollectorStore(join(dir, 'c.db'));
    const claims = { jti: 'jti-1', service_account: 'app', namespace: 'shop', pod: 'app-0', pod_uid: null, node: 'w1', issued: null, expires: null, kind: 'bound', from: 'file' };
    const read = finding({ id: 'read-1', covers: ['H1'], source: 'audit', token: claims });
    const req = finding({ id: 'req-1', rule: 'k-away', source: 'kube-audit', token: { ...claims, from: 'api-request' }, time: new Date(NOW - 3_000_000).toISOString() });
    const plain = finding({ id: 'plain' });
    try {
      for (const store of [pgStore, sqlite]) {
        await store.ingest('worker', enc([read, plain]), NOW);
        await store.ingest('control', enc([req, { ...req, revision: 2, title: 'second' }]), NOW);
        await store.ingest('control', enc([req]), NOW); // a lower revision again: the sighting stays revision 2
        const [t] = await store.tokenTrails(['jti-1']);
        expect(t!.reads.map((r) => [r.agent, r.id])).toEqual([['worker', 'read-1']]);
        expect(t!.requests.map((r) => [r.agent, r.id, (JSON.parse(r.json) as IngestedFinding).title])).toEqual([['control', 'req-1', 'second']]);
        expect(t!.requestsTotal).toBe(1);
        expect(await store.tokenTrails(['jti-other'])).toEqual([{ jti: 'jti-other', reads: [], requests: [], requestsTotal: 0 }]);
        await store.retain(10, NOW + 11 * DAY_MS);
        expect(await store.tokenTrails(['jti-1'])).toEqual([{ jti: 'jti-1', reads: [], requests: [], requestsTotal: 0 }]);
      }
      // All or nothing: a batch the database refuses leaves no sighting either.
      pg.psql("ALTER TABLE fleet_findings ADD CONSTRAINT test_no_evil CHECK (rule <> 'evil')", db);
      await expect(pgStore.ingest('worker', enc([{ ...read, id: 'read-2' }, finding({ rule: 'evil' })]), NOW)).rejects.toThrow(/test_no_evil/);
      expect(one('SELECT count(*) FROM fleet_token_sightings', db)).toBe('0');
    } finally {
      await pgStore.close();
      await sqlite.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('creates daily partitions for the retention window and ahead, and drops whole days past retention', async () => {
    const { store, db } = await freshStore(30);
    try {
      const names = one("SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'fleet_findings'::regclass", db).split(',');
      expect(names).toHaveLength(30 + 3 + 1);
      expect(names[0]).toBe(partitionName(NOW - 30 * DAY_MS - ((NOW - 30 * DAY_MS) % DAY_MS)));
      expect(names.at(-1)).toBe(partitionName(NOW + 3 * DAY_MS - ((NOW + 3 * DAY_MS) % DAY_MS)));
      const old = Array.from({ length: 7 }, (_, i) => finding({ id: `old-${i}`, time: new Date(NOW - 20 * DAY_MS + i).toISOString() }));
      const recent = Array.from({ length: 5 }, (_, i) => finding({ id: `new-${i}`, time: new Date(NOW - DAY_MS + i).toISOString() }));
      await store.ingest('a', enc([...old, ...recent]), NOW);
      // Retention of 10 days: the day 20 days back goes whole, counted; yesterday stays.
      expect(await store.retain(10, NOW)).toBe(7);
      expect(one('SELECT count(*) FROM fleet_findings', db)).toBe('5');
      expect(one("SELECT count(*) FROM fleet_finding_keys WHERE id LIKE 'old-%'", db)).toBe('0');
      expect(one(`SELECT to_regclass('${partitionName(NOW - 20 * DAY_MS - ((NOW - 20 * DAY_MS) % DAY_MS))}') IS NULL`, db)).toBe('t');
      expect(one(`SELECT to_regclass('${partitionName(NOW - 9 * DAY_MS - ((NOW - 9 * DAY_MS) % DAY_MS))}') IS NOT NULL`, db)).toBe('t');
      expect(await store.retain(10, NOW)).toBe(0);
      // Days later, retention also makes the partitions ahead of the new day.
      await store.retain(10, NOW + 5 * DAY_MS);
      expect(one(`SELECT to_regclass('${partitionName(NOW + 8 * DAY_MS - ((NOW + 8 * DAY_MS) % DAY_MS))}') IS NOT NULL`, db)).toBe('t');
    } finally {
      await store.close();
    }
  });

  it('pages newest first across partitions exactly like the SQLite store, with filters and cursors', async () => {
    const { store } = await freshStore();
    const dir = mkdtempSync(join(tmpdir(), 'credwatch-pg-parity-'));
    const lite = openCollectorStore(join(dir, 'c.db'));
    try {
      const all: IngestedFinding[] = [];
      for (let i = 0; i < 1200; i++) {
        // Several days, many equal times (ties broken by seq), mixed severities and hosts.
        all.push(finding({ id: `p-${i}`, time: new Date(NOW - (i % 5) * DAY_MS - (i % 40) * 1000).toISOString(), severity: i % 3 ? 'high' : 'low', host: `node-${i % 4}` }));
      }
      for (let i = 0; i < all.length; i += 300) {
        await store.ingest('a', enc(all.slice(i, i + 300)), NOW);
        await lite.ingest('a', enc(all.slice(i, i + 300)), NOW);
      }
      // Equal times are ordered by seq, which each store assigns its own way: compare the time order
      // and the set of ids (a cursor that skipped or repeated a row at a tie would change the set).
      const read = async (s: typeof lite, q: object, pageRows: number) => {
        const fs = await queryAll(s, q, pageRows);
        return { times: fs.map((f) => f.time), ids: fs.map((f) => f.id) };
      };
      for (const q of [{}, { minSeverity: 'high' as const }, { host: 'node-2', sinceMs: NOW - 3 * DAY_MS }]) {
        const got = await read(store, q, 50);
        const want = await read(lite, q, 1000);
        expect(got.times).toEqual(want.times);
        expect(new Set(got.ids).size).toBe(got.ids.length);
        expect([...got.ids].sort()).toEqual([...want.ids].sort());
      }
      expect((await read(store, {}, 50)).ids).toHaveLength(1200);
      expect((await read(store, { limit: 77 }, 50)).ids).toHaveLength(77);
      // A page bounded by bytes still has at least one row and a cursor.
      const plan = await store.planPage({}, null, 1000, 1);
      expect(plan.rows).toHaveLength(1);
      expect(plan.next).not.toBeNull();
    } finally {
      await store.close();
      await lite.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('two stores (replicas) racing on the same keys store each (agent, id) once, the highest revision winning', async () => {
    const { store, db } = await freshStore();
    const other = await openPgCollectorStore({ ...pg.connection(db), max: 4 }, { retentionDays: 30, aheadDays: 3, now: () => NOW });
    try {
      const fs = Array.from({ length: 400 }, (_, i) => finding({ id: `r-${i}` }));
      const batches = [];
      for (let k = 0; k < 8; k++) {
        // Overlapping, shuffled slices with different revisions, sent through both stores at once.
        const slice = fs.filter((_, i) => (i + k) % 3 !== 0).map((f) => ({ ...f, revision: k }));
        slice.sort(() => Math.random() - 0.5);
        batches.push((k % 2 ? other : store).ingest('a', enc(slice), NOW));
      }
      const results = await Promise.all(batches);
      expect(one('SELECT count(*) FROM fleet_findings', db)).toBe('400');
      expect(one('SELECT count(*) FROM fleet_finding_keys', db)).toBe('400');
      expect(results.reduce((n, r) => n + r.accepted, 0)).toBe(400);
      // Each id's stored revision is the highest k whose slice held it.
      const expected = fs.map((_, i) => Math.max(...[0, 1, 2, 3, 4, 5, 6, 7].filter((k) => (i + k) % 3 !== 0)));
      const got = new Map(pg.psql('SELECT id, revision FROM fleet_findings', db).trim().split('\n').map((l) => l.split('|') as [string, string]));
      expect(fs.map((f) => Number(got.get(f.id)))).toEqual(expected);
    } finally {
      await store.close();
      await other.close();
    }
  });

  it('says the database is unavailable while it is down, and works again once it is back', async () => {
    const { store, db } = await freshStore();
    try {
      await store.ingest('a', enc([finding()]), NOW);
      await pg.stop();
      const err = await store.ingest('a', enc([finding()]), NOW).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      await expect(queryAll(store, {})).rejects.toBeInstanceOf(StoreUnavailableError);
      await pg.start();
      expect(await store.ingest('a', enc([finding()]), NOW)).toMatchObject({ accepted: 1 });
      expect(one('SELECT count(*) FROM fleet_findings', db)).toBe('2');
    } finally {
      await store.close();
    }
  });

  it('a wrong password fails the open without the password in the error', async () => {
    const secret = 'not-the-password-5f4dcc3b';
    const err = (await openPgCollectorStore({ ...pg.connection(), password: secret }, { retentionDays: 30, aheadDays: 3 }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(err.message).toMatch(/password authentication failed/);
    expect(err.message).not.toContain(secret);
    // The server still serves the right password.
    const c = new Client(pg.connection());
    await c.connect();
    await c.end();
  });
});
