/**
 * CollectorStore on PostgreSQL: any number of collector replicas share one database.
 *
 * Ingest is one transaction per batch (all or nothing) and resolves only after COMMIT returned, so the
 * server's 200 is never ahead of durable storage (with PostgreSQL's default synchronous_commit=on).
 * Idempotency per (agent, id) lives in fleet_finding_keys (see pg-schema.ts):
 *   1. new keys are inserted with ON CONFLICT DO NOTHING, and their findings with them (one statement);
 *   2. the rest (resends, higher revisions, keys a concurrent replica inserted first) are locked with
 *      SELECT ... FOR UPDATE in id order; a higher revision (absent = 0) moves the key to a new row,
 *      ON CONFLICT ... DO UPDATE WHERE excluded.revision > revision, and the old row is deleted; an
 *      equal or lower one is a duplicate.
 * Deadlocks and serialization failures between replicas are retried a few times; a database that is
 * down, restarting or out of connections becomes StoreUnavailableError (503 + Retry-After).
 *
 * Queries page newest first on the (time_ms, seq) index of each partition (PostgreSQL merges the
 * partitions in order); rows are read back by (time_ms, seq), so only their partitions are touched.
 */
import { Pool, type PoolClient, type PoolConfig } from 'pg';
import { severityRank } from '../model/finding';
import type { FindingsQuery } from '../store/types';
import type { EncodedFinding } from './finding-schema';
import { DAY_MS, dayStart, dropPartitionsBefore, ensurePartitions, listPartitions } from './pg-partitions';
import { migrate } from './pg-schema';
import { TRAIL_READS, TRAIL_REQUESTS, tokenSightings, type SightingKind, type TokenSighting } from './token-join';
import { StoreUnavailableError, TRAIL_COUNT_CAP, trailsOf, type AgentRecord, type CollectorStore, type Cursor, type IngestResult, type PageRow, type PagePlan } from './store';

export interface PgStoreOptions {
  /** Days kept: partitions for this window are created, older ones dropped by retain(). */
  retentionDays: number;
  /** Days of partitions made ahead of today. */
  aheadDays: number;
  now?: () => number;
  /** Told about errors of idle pooled connections (the database restarting); they must not crash us. */
  onPoolError?: (err: Error) => void;
}

/** SQLSTATE classes that mean "not now": connection trouble, shutdown, resources, timeouts. */
const UNAVAILABLE = /^(08|53|57|58)/;
const RETRY = new Set(['40001', '40P01']);
const RETENTION_GRACE_MS = 60 * 60_000;

function isUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e.code === 'string') {
    if (UNAVAILABLE.test(e.code)) return true;
    // Node socket errors (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, ...)
    if (/^E[A-Z]+$/.test(e.code)) return true;
  }
  const m = typeof e.message === 'string' ? e.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended|the database system is/i.test(m);
}

/** Error text that is safe to show: node-postgres messages do not carry passwords, but cap them. */
function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const msg = typeof e.message === 'string' ? e.message.slice(0, 200) : 'unknown error';
  return typeof e.code === 'string' ? `${msg} [${e.code}]` : msg;
}

interface Row {
  encoded: EncodedFinding;
  id: string;
  revision: number;
  timeMs: number;
  severity: number;
  rule: string;
  host: string;
  containerId: string | null;
  json: string;
}

/** Columns of `rows` as arrays, for unnest(). */
function columns(rows: Row[]): unknown[] {
  return [
    rows.map((r) => r.id),
    rows.map((r) => r.revision),
    rows.map((r) => r.timeMs),
    rows.map((r) => r.severity),
    rows.map((r) => r.rule),
    rows.map((r) => r.host),
    rows.map((r) => r.containerId),
    // The findings' JSON texts joined by newlines, split again by string_to_table: each finding is
    // encoded once (a text[] literal or a JSON array of strings would escape every quote of it again
    // on the client, and PostgreSQL would parse and unescape it; this is a plain split). JSON.stringify
    // never writes a raw newline (in a string it is \n), so line n is finding n; ingest checks it.
    rows.map((r) => r.json).join('\n'),
  ];
}

const UNNEST = `unnest($2::text[], $3::int[], $4::bigint[], $5::smallint[], $6::text[], $7::text[], $8::text[]) WITH ORDINALITY
                  AS c(id, revision, time_ms, severity, rule, host, container_id, n)
                JOIN string_to_table($9::text, E'\\n') WITH ORDINALITY AS j(json, n) USING (n)`;

/**
 * Keys and their findings in one statement, for the keys `conflict` lets through; returns the ids it
 * stored. The rows' seq comes from the key insert, so a finding row exists only with its key.
 */
const keysAndFindings = (conflict: string): string => `
  WITH u AS (SELECT id, revision, time_ms, severity, rule, host, container_id, octet_length(json) AS bytes, json FROM ${UNNEST}),
  k AS (
    INSERT INTO fleet_finding_keys AS f (agent, id, revision, time_ms, seq)
    SELECT $1, u.id, u.revision, u.time_ms, nextval('fleet_finding_seq') FROM u ORDER BY u.id
    ${conflict}
    RETURNING id, seq
  )
  INSERT INTO fleet_findings (time_ms, seq, agent, id, revision, stored_ms, severity, rule, host, container_id, bytes, json)
  SELECT u.time_ms, k.seq, $1, u.id, u.revision, $10, u.severity, u.rule, u.host, u.container_id, u.bytes, u.json
  FROM u JOIN k ON k.id = u.id
  RETURNING id`;

/** New keys only (the others exist already). */
const INSERT_NEW = keysAndFindings('ON CONFLICT (agent, id) DO NOTHING');

/** Moves locked keys to their higher revision; the WHERE re-checks what the caller decided. */
const REPLACE = keysAndFindings(`ON CONFLICT (agent, id) DO UPDATE SET revision = excluded.revision, time_ms = excluded.time_ms, seq = excluded.seq
    WHERE excluded.revision > f.revision`);

const REMEMBER_AGENT = `
  INSERT INTO fleet_agents AS a (agent, first_seen_ms, last_seen_ms, last_host, batches, findings, duplicates)
  VALUES ($1, $2, $2, $3, 1, $4, $5)
  ON CONFLICT (agent) DO UPDATE SET
    last_seen_ms = greatest(a.last_seen_ms, excluded.last_seen_ms),
    last_host = coalesce(excluded.last_host, a.last_host),
    batches = a.batches + 1,
    findings = a.findings + excluded.findings,
    duplicates = a.duplicates + excluded.duplicates`;

/** Sightings of the findings stored in this batch; a higher revision's text replaces the older. */
const PUT_SIGHTINGS = `
  INSERT INTO fleet_token_sightings AS s (jti, kind, agent, id, time_ms, json)
  SELECT jti, kind, $1, id, time_ms, json FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[]) AS u(jti, kind, id, time_ms, json)
  ON CONFLICT (jti, kind, agent, id) DO UPDATE SET time_ms = excluded.time_ms, json = excluded.json`;

/** Reads newest first and requests oldest first, bounded per jti, for the jtis of $1. */
const TRAIL_ROWS = `
  SELECT t.* FROM unnest($1::text[]) AS j(jti) CROSS JOIN LATERAL (
    (SELECT jti, kind, agent, id, time_ms, json FROM fleet_token_sightings WHERE jti = j.jti AND kind = 'read' ORDER BY time_ms DESC, agent, id LIMIT ${TRAIL_READS})
    UNION ALL
    (SELECT jti, kind, agent, id, time_ms, json FROM fleet_token_sightings WHERE jti = j.jti AND kind = 'request' ORDER BY time_ms, agent, id LIMIT ${TRAIL_REQUESTS})
  ) AS t`;
const TRAIL_COUNTS = `
  SELECT j.jti, (SELECT count(*) FROM (SELECT 1 FROM fleet_token_sightings WHERE jti = j.jti AND kind = 'request' LIMIT ${TRAIL_COUNT_CAP}) AS c) AS n
  FROM unnest($1::text[]) AS j(jti)`;

function whereFor(q: FindingsQuery, cursor: Cursor | null): { sql: string; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown): string => {
    args.push(v);
    return `$${args.length}`;
  };
  if (q.sinceMs !== undefined) where.push(`time_ms >= ${arg(q.sinceMs)}`);
  if (q.untilMs !== undefined) where.push(`time_ms < ${arg(q.untilMs)}`);
  if (q.minSeverity !== undefined && severityRank(q.minSeverity) > 0) where.push(`severity >= ${arg(severityRank(q.minSeverity))}`);
  if (q.rule !== undefined) where.push(`rule = ${arg(q.rule)}`);
  if (q.host !== undefined) where.push(`host = ${arg(q.host)}`);
  // A prefix match without LIKE (whose % and _ would be the caller's wildcards).
  if (q.container !== undefined) where.push(`left(container_id, ${arg(q.container.length)}) = ${arg(q.container)}`);
  if (cursor !== null) {
    const t = arg(cursor.timeMs);
    // The plain bound lets the planner skip newer partitions; the row comparison is the keyset.
    where.push(`time_ms <= ${t} AND (time_ms, seq) < (${t}, ${arg(cursor.seq)})`);
  }
  return { sql: where.length ? `WHERE ${where.join(' AND ')}` : '', args };
}

export interface PgCollectorStore extends CollectorStore {
  /** Creates partitions for the retention window and the days ahead (also done by open and retain). */
  ensurePartitions(nowMs: number): Promise<number>;
  readonly pool: Pool;
}

/** Connects, migrates the schema and creates the partitions; throws StoreUnavailableError if it cannot connect. */
export async function openPgCollectorStore(config: PoolConfig, opts: PgStoreOptions): Promise<PgCollectorStore> {
  const now = opts.now ?? Date.now;
  const pool = new Pool(config);
  // An idle pooled connection that the server closes emits 'error' on the pool: without a listener
  // that would be an uncaught exception. The next query simply gets a new connection.
  pool.on('error', (err) => opts.onPoolError?.(err));
  /** Days [lo, hi) known to have partitions; a batch outside makes us look again. */
  let covered = { lo: 0, hi: 0 };

  const withClient = async <T>(fn: (c: PoolClient) => Promise<T>): Promise<T> => {
    let c: PoolClient;
    try {
      c = await pool.connect();
    } catch (err) {
      throw new StoreUnavailableError(`cannot connect to PostgreSQL: ${describe(err)}`);
    }
    let broken = false;
    try {
      return await fn(c);
    } catch (err) {
      broken = isUnavailable(err);
      if (broken) throw new StoreUnavailableError(`PostgreSQL failed: ${describe(err)}`);
      throw err;
    } finally {
      // A connection that failed is not given back to others.
      c.release(broken ? true : undefined);
    }
  };

  const ensure = async (c: PoolClient, fromMs: number, toMs: number): Promise<number> => {
    const made = await ensurePartitions(c, fromMs, toMs);
    const days = await listPartitions(c);
    // The contiguous run of days that holds today is what we can rely on.
    const today = dayStart(now());
    let lo = today;
    let hi = today;
    const set = new Set(days);
    if (set.has(today)) {
      while (set.has(lo - DAY_MS)) lo -= DAY_MS;
      while (set.has(hi)) hi += DAY_MS;
    }
    covered = { lo, hi };
    return made;
  };
  const windowFor = (nowMs: number): [number, number] => [nowMs - opts.retentionDays * DAY_MS, nowMs + opts.aheadDays * DAY_MS];

  const ingestOnce = async (agent: string, rows: Row[], inBatchDuplicates: number, nowMs: number, host: string | null): Promise<IngestResult> =>
    withClient(async (c) => {
      let minT = Infinity;
      let maxT = -Infinity;
      for (const r of rows) {
        minT = Math.min(minT, r.timeMs);
        maxT = Math.max(maxT, r.timeMs);
      }
      if (minT < covered.lo || maxT >= covered.hi) {
        const [lo, hi] = windowFor(nowMs);
        await ensure(c, Math.min(lo, minT), Math.max(hi, maxT));
      }
      const result: IngestResult = { accepted: 0, replaced: 0, duplicates: inBatchDuplicates };
      await c.query('BEGIN');
      try {
        /** Rows that became the stored copy (new or a higher revision). */
        const kept: Row[] = [];
        let pending = rows;
        // Twice at most in practice: a key another replica inserted between our two steps is locked
        // and judged on the next round.
        for (let round = 0; pending.length > 0; round++) {
          if (round > 5) throw Object.assign(new Error('keys kept changing under a concurrent writer'), { code: '40001' });
          const stored = new Set((await c.query<{ id: string }>({ name: 'cw_insert_new', text: INSERT_NEW, values: [agent, ...columns(pending), nowMs] })).rows.map((r) => r.id));
          result.accepted += stored.size;
          for (const r of pending) if (stored.has(r.id)) kept.push(r);
          const rest = pending.filter((r) => !stored.has(r.id));
          if (rest.length === 0) break;
          const locked = await c.query<{ id: string; revision: number; time_ms: string; seq: string }>(
            'SELECT id, revision, time_ms, seq FROM fleet_finding_keys WHERE agent = $1 AND id = ANY($2::text[]) ORDER BY id FOR UPDATE',
            [agent, rest.map((r) => r.id)],
          );
          const have = new Map(locked.rows.map((r) => [r.id, r]));
          const higher: Row[] = [];
          const gone: Row[] = [];
          for (const r of rest) {
            const k = have.get(r.id);
            if (k === undefined) gone.push(r); // deleted by retention meanwhile: insert it again
            else if (r.revision > k.revision) higher.push(r);
            else result.duplicates++;
          }
          if (higher.length > 0) {
            const old = higher.map((r) => have.get(r.id)!);
            await c.query('DELETE FROM fleet_findings WHERE time_ms = ANY($1::bigint[]) AND (time_ms, seq) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))', [
              old.map((k) => k.time_ms),
              old.map((k) => k.seq),
            ]);
            const moved = (await c.query({ name: 'cw_replace', text: REPLACE, values: [agent, ...columns(higher), nowMs] })).rowCount ?? 0;
            // Locked rows cannot change under us, so every one moves; anything else is a bug.
            if (moved !== higher.length) throw new Error(`revision update moved ${moved} of ${higher.length} findings`);
            result.replaced += moved;
            kept.push(...higher);
          }
          pending = gone;
        }
        // The fleet join's state, in the batch's transaction (committed with the findings or not at all).
        const sightings = tokenSightings(agent, kept.map((r) => r.encoded));
        if (sightings.length > 0) {
          await c.query({ name: 'cw_put_sightings', text: PUT_SIGHTINGS, values: [agent, sightings.map((t) => t.jti), sightings.map((t) => t.kind), sightings.map((t) => t.id), sightings.map((t) => t.timeMs), sightings.map((t) => t.json)] });
        }
        await c.query({ name: 'cw_remember_agent', text: REMEMBER_AGENT, values: [agent, nowMs, host, result.accepted, result.duplicates] });
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
      return result;
    });

  const store: PgCollectorStore = {
    pool,
    async ingest(agent, findings, nowMs) {
      // One row per id: a later copy in the same batch wins only with a higher revision, and is
      // counted as the SQLite store counts it going row by row (replaced if higher, else duplicate).
      const byId = new Map<string, Row>();
      let inBatch = 0;
      let inBatchReplaced = 0;
      for (const encoded of findings) {
        const { finding: f, json } = encoded;
        const row: Row = {
          encoded,
          id: f.id,
          revision: f.revision ?? 0,
          timeMs: Date.parse(f.time),
          severity: severityRank(f.severity),
          rule: f.rule,
          host: f.host,
          containerId: f.container?.id ?? null,
          json,
        };
        // The batch's texts travel newline-separated (columns()); a raw newline would shift every row after it.
        if (json.includes('\n')) throw new Error('a finding encoded with a raw newline');
        const prev = byId.get(f.id);
        if (prev !== undefined && row.revision > prev.revision) inBatchReplaced++;
        else if (prev !== undefined) inBatch++;
        if (prev === undefined || row.revision > prev.revision) byId.set(f.id, row);
      }
      const rows = [...byId.values()];
      if (rows.length === 0) return { accepted: 0, replaced: 0, duplicates: 0 };
      const host = findings[findings.length - 1]?.finding.host ?? null;
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await ingestOnce(agent, rows, inBatch, nowMs, host);
          return { ...r, replaced: r.replaced + inBatchReplaced };
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (attempt < 3 && code !== undefined && RETRY.has(code)) continue;
          if (err instanceof StoreUnavailableError) throw err;
          if (code !== undefined && RETRY.has(code)) throw new StoreUnavailableError(`PostgreSQL kept failing the transaction: ${describe(err)}`, 1);
          throw err;
        }
      }
    },

    planPage: (q, cursor, limit, maxBytes) =>
      withClient(async (c): Promise<PagePlan> => {
        const { sql, args } = whereFor(q, cursor);
        args.push(limit + 1);
        const r = await c.query<{ seq: string; time_ms: string; bytes: number }>(
          `SELECT seq, time_ms, bytes FROM fleet_findings ${sql} ORDER BY time_ms DESC, seq DESC LIMIT $${args.length}`,
          args,
        );
        const page: PageRow[] = [];
        let bytes = 0;
        let last: Cursor | null = null;
        for (const row of r.rows) {
          const item = { seq: Number(row.seq), timeMs: Number(row.time_ms), bytes: row.bytes };
          if (page.length === limit || (page.length > 0 && bytes + item.bytes > maxBytes)) break;
          page.push(item);
          bytes += item.bytes;
          last = { timeMs: item.timeMs, seq: item.seq };
        }
        return { rows: page, next: page.length < r.rows.length ? last : null };
      }),

    readRows: (page) =>
      page.length === 0
        ? Promise.resolve([])
        : withClient(async (c) => {
            const r = await c.query<{ seq: string; json: string }>(
              'SELECT seq, json FROM fleet_findings WHERE time_ms = ANY($1::bigint[]) AND seq = ANY($2::bigint[])',
              [[...new Set(page.map((p) => p.timeMs))], page.map((p) => p.seq)],
            );
            const bySeq = new Map(r.rows.map((x) => [Number(x.seq), x.json]));
            return page.map((p) => bySeq.get(p.seq)).filter((j): j is string => j !== undefined);
          }),

    agents: () =>
      withClient(async (c) => {
        const r = await c.query<{ agent: string; first_seen_ms: string; last_seen_ms: string; last_host: string | null; batches: string; findings: string; duplicates: string }>(
          'SELECT * FROM fleet_agents ORDER BY agent',
        );
        return r.rows.map(
          (x): AgentRecord => ({
            agent: x.agent,
            firstSeenMs: Number(x.first_seen_ms),
            lastSeenMs: Number(x.last_seen_ms),
            lastHost: x.last_host,
            batches: Number(x.batches),
            findings: Number(x.findings),
            duplicates: Number(x.duplicates),
          }),
        );
      }),

    tokenTrails: (jtis) =>
      jtis.length === 0
        ? Promise.resolve([])
        : withClient(async (c) => {
            const list = [...jtis];
            const r = await c.query<{ jti: string; kind: SightingKind; agent: string; id: string; time_ms: string; json: string }>(TRAIL_ROWS, [list]);
            const n = await c.query<{ jti: string; n: string }>(TRAIL_COUNTS, [list]);
            const rows: TokenSighting[] = r.rows.map((x) => ({ jti: x.jti, kind: x.kind, agent: x.agent, id: x.id, timeMs: Number(x.time_ms), json: x.json }));
            return trailsOf(list, rows, new Map(n.rows.map((x) => [x.jti, Number(x.n)])));
          }),

    ensurePartitions: (nowMs) =>
      withClient(async (c) => {
        const [lo, hi] = windowFor(nowMs);
        return ensure(c, lo, hi);
      }),

    /** Drops the partitions past retention, then the keys that pointed into them (in bounded steps). */
    retain: (days, nowMs) =>
      withClient(async (c) => {
        const dropped = await dropPartitionsBefore(c, nowMs - days * DAY_MS, RETENTION_GRACE_MS);
        await ensure(c, nowMs - days * DAY_MS, nowMs + opts.aheadDays * DAY_MS);
        // Keys older than the oldest partition point at nothing (also after a run that died midway).
        const oldest = (await listPartitions(c))[0];
        if (oldest !== undefined) {
          for (;;) {
            const r = await c.query('DELETE FROM fleet_finding_keys WHERE ctid = ANY (ARRAY(SELECT ctid FROM fleet_finding_keys WHERE time_ms < $1 LIMIT 5000))', [oldest]);
            if ((r.rowCount ?? 0) < 5000) break;
          }
        }
        // The join's state goes with the findings it was taken from.
        for (;;) {
          const r = await c.query('DELETE FROM fleet_token_sightings WHERE ctid = ANY (ARRAY(SELECT ctid FROM fleet_token_sightings WHERE time_ms < $1 LIMIT 5000))', [nowMs - days * DAY_MS]);
          if ((r.rowCount ?? 0) < 5000) break;
        }
        return dropped.findings;
      }),

    poolStats: () => ({ max: config.max ?? 10, total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),

    close: () => pool.end(),
  };

  try {
    await withClient(async (c) => {
      await migrate(c);
      await ensure(c, ...windowFor(now()));
    });
  } catch (err) {
    // Do not leave idle connections holding the process open after a failed start.
    await pool.end().catch(() => undefined);
    throw err;
  }
  return store;
}
