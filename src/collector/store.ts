/**
 * The collector's storage contract, and its embedded SQLite implementation.
 *
 * Findings are keyed per (agent, id): ids are chosen by agents, so one agent must never be able to
 * shadow another's finding by reusing its id. A re-sent finding with a higher `revision` (an incident
 * that grew) replaces the stored one; an equal or lower revision is a duplicate (absent = 0).
 *
 * Revision rules every implementation of CollectorStore keeps (docs/shipping.md, "The collector's
 * contract"); agents deliver each revision at least once, in any order after a retry:
 *   - (agent, id) not stored: insert, counted in `accepted` (and in the agent's `findings`);
 *   - stored with a lower revision: replace every column and the JSON in place, counted in `replaced`
 *     (the row keeps its `seq`, and an incident's `time` stays its first event's, so its place in the
 *     newest-first order does not move);
 *   - stored with an equal or higher revision: change nothing, counted in `duplicates`; the batch is
 *     still acked (a resend is not an error);
 *   - a batch is applied in order in one transaction: two revisions of one id in it end as the higher.
 *
 * Queries are keyset-paged, newest first by (time_ms, seq): `planPage` picks the rows of one page from
 * the small columns only (bounded by a row limit and a byte budget) and returns the cursor after it;
 * `readRows` then fetches their JSON in small chunks, so a page of large findings is streamed instead of
 * being built in memory. The file is the SQLite database the agent uses (same safety checks), with the
 * collector's own table `fleet_findings` and `synchronous=FULL`: a batch is on disk before it is acked.
 */
import type { Statement } from 'better-sqlite3';
import { openDatabase, type Db } from '../store/db';
import { severityRank, type Finding } from '../model/finding';
import type { FindingsQuery } from '../store/types';
import type { EncodedFinding } from './finding-schema';
import { TRAIL_READS, TRAIL_REQUESTS, tokenSightings, type SightingKind, type TokenSighting, type TokenTrail } from './token-join';

export interface AgentRecord {
  agent: string;
  firstSeenMs: number;
  lastSeenMs: number;
  lastHost: string | null;
  batches: number;
  findings: number;
  duplicates: number;
}

export interface IngestResult {
  /** New (agent, id) pairs stored. */
  accepted: number;
  /** Stored ones replaced by a higher revision. */
  replaced: number;
  /** Already stored at this or a higher revision: nothing changed. */
  duplicates: number;
}

/** Position in the newest-first order: the last row of the previous page. */
export interface Cursor {
  timeMs: number;
  seq: number;
}

export interface PageRow {
  seq: number;
  /** The row's time: lets a time-partitioned store read it from its partition only. */
  timeMs: number;
  bytes: number;
}

export interface PagePlan {
  rows: PageRow[];
  /** Where the next page starts; null when this page reached the end. */
  next: Cursor | null;
}

export interface CollectorStore {
  /** Stores a batch in one durable transaction (all or nothing); resolves after the commit. Stores each finding's `json` as it is. */
  ingest(agent: string, findings: readonly EncodedFinding[], nowMs: number): Promise<IngestResult>;
  /** At most `limit` rows and about `maxBytes` of JSON (always at least one row), after `cursor`. */
  planPage(q: FindingsQuery, cursor: Cursor | null, limit: number, maxBytes: number): Promise<PagePlan>;
  /** JSON text of the given rows, in the order given (rows deleted meanwhile are skipped). */
  readRows(rows: PageRow[]): Promise<string[]>;
  agents(): Promise<AgentRecord[]>;
  /**
   * What the store knows of these jtis for the fleet join (token-join.ts): `ingest` records every
   * batch's token sightings in its transaction, so this sees what any replica committed.
   */
  tokenTrails(jtis: readonly string[]): Promise<TokenTrail[]>;
  /** Deletes findings (and token sightings) older than `days` (in bounded steps); returns how many went. */
  retain(days: number, nowMs: number): Promise<number>;
  close(): Promise<void>;
  /** Connection pool use, for /metrics (stores without a pool leave it out). */
  poolStats?(): PoolStats;
}

export interface PoolStats {
  /** Connections the pool may open. */
  max: number;
  total: number;
  idle: number;
  waiting: number;
}

/**
 * The database cannot take the request now (down, restarting, out of connections, timed out): the
 * server answers 503 with Retry-After, and nothing of the batch was acknowledged.
 */
export class StoreUnavailableError extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds = 5,
  ) {
    super(message);
  }
}

export function encodeCursor(c: Cursor): string {
  return `${c.timeMs}.${c.seq}`;
}

/** Null for a malformed cursor (the server answers 400). */
export function decodeCursor(s: string): Cursor | null {
  const m = /^(-?\d{1,16})\.(\d{1,16})$/.exec(s);
  if (!m) return null;
  return { timeMs: Number(m[1]), seq: Number(m[2]) };
}

/** Reads every page of a query (tests and small tools; the server streams instead). */
export async function queryAll(store: CollectorStore, q: FindingsQuery, pageRows = 1000): Promise<Finding[]> {
  const out: Finding[] = [];
  let cursor: Cursor | null = null;
  const max = q.limit ?? Infinity;
  do {
    const plan = await store.planPage(q, cursor, Math.min(pageRows, max - out.length), 16 * 1024 * 1024);
    for (const text of await store.readRows(plan.rows)) out.push(JSON.parse(text) as Finding);
    cursor = plan.next;
  } while (cursor !== null && out.length < max);
  return out;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS fleet_findings (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    agent        TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    revision     INTEGER NOT NULL,
    time_ms      INTEGER NOT NULL,
    stored_ms    INTEGER NOT NULL,
    severity     INTEGER NOT NULL,
    rule         TEXT    NOT NULL,
    host         TEXT    NOT NULL,
    container_id TEXT,
    bytes        INTEGER NOT NULL,
    json         TEXT    NOT NULL,
    UNIQUE (agent, id)
  );
  CREATE INDEX IF NOT EXISTS fleet_findings_time ON fleet_findings (time_ms, seq);
  CREATE TABLE IF NOT EXISTS fleet_agents (
    agent TEXT PRIMARY KEY,
    json  TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS fleet_token_sightings (
    jti     TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    agent   TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    time_ms INTEGER NOT NULL,
    json    TEXT    NOT NULL,
    PRIMARY KEY (jti, kind, agent, id)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS fleet_token_sightings_time ON fleet_token_sightings (time_ms);
`;

/** Requests counted per jti at most (the count only grows a link's revision; it need not be exact beyond this). */
export const TRAIL_COUNT_CAP = 100_000;

/** Groups sightings rows into trails, in the order of `jtis`. */
export function trailsOf(jtis: readonly string[], rows: readonly TokenSighting[], totals: ReadonlyMap<string, number>): TokenTrail[] {
  const by = new Map<string, TokenTrail>(jtis.map((j) => [j, { jti: j, reads: [], requests: [], requestsTotal: totals.get(j) ?? 0 }]));
  for (const r of rows) {
    const t = by.get(r.jti);
    if (t) (r.kind === 'read' ? t.reads : t.requests).push(r);
  }
  return [...by.values()];
}

/** Builds WHERE clauses shared by paging (filters + keyset position). */
function whereFor(q: FindingsQuery, cursor: Cursor | null): { sql: string; args: (string | number)[] } {
  const where: string[] = [];
  const args: (string | number)[] = [];
  if (q.sinceMs !== undefined) {
    where.push('time_ms >= ?');
    args.push(q.sinceMs);
  }
  if (q.untilMs !== undefined) {
    where.push('time_ms < ?');
    args.push(q.untilMs);
  }
  if (q.minSeverity !== undefined && severityRank(q.minSeverity) > 0) {
    where.push('severity >= ?');
    args.push(severityRank(q.minSeverity));
  }
  if (q.rule !== undefined) {
    where.push('rule = ?');
    args.push(q.rule);
  }
  if (q.host !== undefined) {
    where.push('host = ?');
    args.push(q.host);
  }
  if (q.container !== undefined) {
    where.push('substr(container_id, 1, ?) = ?');
    args.push(q.container.length, q.container);
  }
  if (cursor !== null) {
    where.push('(time_ms < ? OR (time_ms = ? AND seq < ?))');
    args.push(cursor.timeMs, cursor.timeMs, cursor.seq);
  }
  return { sql: where.length ? `WHERE ${where.join(' AND ')}` : '', args };
}

export function collectorStoreOn(db: Db): CollectorStore {
  // Durability before the ack: NORMAL in WAL mode may lose the last commits on power loss.
  db.pragma('synchronous = FULL');
  db.exec(SCHEMA);
  migrateLegacyRows(db);
  const existing = db.prepare('SELECT revision FROM fleet_findings WHERE agent = ? AND id = ?').pluck();
  const insert = db.prepare(
    `INSERT INTO fleet_findings (agent, id, revision, time_ms, stored_ms, severity, rule, host, container_id, bytes, json)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const replace = db.prepare(
    `UPDATE fleet_findings SET revision = ?, time_ms = ?, stored_ms = ?, severity = ?, rule = ?, host = ?, container_id = ?, bytes = ?, json = ?
     WHERE agent = ? AND id = ?`,
  );
  const putSighting = db.prepare(
    `INSERT INTO fleet_token_sightings (jti, kind, agent, id, time_ms, json) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (jti, kind, agent, id) DO UPDATE SET time_ms = excluded.time_ms, json = excluded.json`,
  );
  const trailRows = db.prepare(
    `SELECT * FROM (SELECT jti, kind, agent, id, time_ms AS timeMs, json FROM fleet_token_sightings WHERE jti = ? AND kind = 'read' ORDER BY time_ms DESC, agent, id LIMIT ${TRAIL_READS})
     UNION ALL
     SELECT * FROM (SELECT jti, kind, agent, id, time_ms AS timeMs, json FROM fleet_token_sightings WHERE jti = ? AND kind = 'request' ORDER BY time_ms, agent, id LIMIT ${TRAIL_REQUESTS})`,
  );
  const trailCount = db.prepare(`SELECT count(*) FROM (SELECT 1 FROM fleet_token_sightings WHERE jti = ? AND kind = 'request' LIMIT ${TRAIL_COUNT_CAP})`).pluck();
  const getAgent = db.prepare('SELECT json FROM fleet_agents WHERE agent = ?').pluck();
  const putAgent = db.prepare('INSERT INTO fleet_agents (agent, json) VALUES (?, ?) ON CONFLICT (agent) DO UPDATE SET json = excluded.json');
  const byQuery = new Map<string, Statement<unknown[]>>();
  const prepared = (sql: string): Statement<unknown[]> => {
    let s = byQuery.get(sql);
    if (!s) {
      if (byQuery.size > 256) byQuery.clear();
      s = db.prepare<unknown[]>(sql);
      byQuery.set(sql, s);
    }
    return s;
  };

  const remember = (agent: string, host: string | null, r: IngestResult, nowMs: number): void => {
    let rec: AgentRecord = { agent, firstSeenMs: nowMs, lastSeenMs: nowMs, lastHost: host, batches: 0, findings: 0, duplicates: 0 };
    const prev = getAgent.get(agent) as string | undefined;
    if (prev !== undefined) {
      try {
        rec = JSON.parse(prev) as AgentRecord;
      } catch {
        /* a damaged record is replaced */
      }
    }
    rec.lastSeenMs = nowMs;
    if (host !== null) rec.lastHost = host;
    rec.batches++;
    rec.findings += r.accepted;
    rec.duplicates += r.duplicates;
    putAgent.run(agent, JSON.stringify(rec));
  };

  const ingestTx = db.transaction((agent: string, findings: readonly EncodedFinding[], nowMs: number): IngestResult => {
    const r: IngestResult = { accepted: 0, replaced: 0, duplicates: 0 };
    // The findings that became the stored copy (new or a higher revision).
    const kept: EncodedFinding[] = [];
    for (const e of findings) {
      const { finding: f, json } = e;
      const revision = f.revision ?? 0;
      const row = [Date.parse(f.time), nowMs, severityRank(f.severity), f.rule, f.host, f.container?.id ?? null, Buffer.byteLength(json), json];
      const stored = existing.get(agent, f.id) as number | undefined;
      if (stored === undefined) {
        insert.run(agent, f.id, revision, ...row);
        r.accepted++;
        kept.push(e);
      } else if (revision > stored) {
        replace.run(revision, ...row, agent, f.id);
        r.replaced++;
        kept.push(e);
      } else r.duplicates++;
    }
    // In the same transaction: the join's state is as durable as the findings it comes from.
    for (const t of tokenSightings(agent, kept)) putSighting.run(t.jti, t.kind, t.agent, t.id, t.timeMs, t.json);
    remember(agent, findings[findings.length - 1]?.finding.host ?? null, r, nowMs);
    return r;
  });

  return {
    ingest: (agent, findings, nowMs) => Promise.resolve(ingestTx(agent, findings, nowMs)),
    planPage(q, cursor, limit, maxBytes) {
      const { sql, args } = whereFor(q, cursor);
      const rows = prepared(`SELECT seq, time_ms AS timeMs, bytes FROM fleet_findings ${sql} ORDER BY time_ms DESC, seq DESC LIMIT ?`).all(...args, limit + 1) as (PageRow & { timeMs: number })[];
      const page: PageRow[] = [];
      let bytes = 0;
      let last: Cursor | null = null;
      for (const r of rows) {
        if (page.length === limit || (page.length > 0 && bytes + r.bytes > maxBytes)) break;
        page.push({ seq: r.seq, timeMs: r.timeMs, bytes: r.bytes });
        bytes += r.bytes;
        last = { timeMs: r.timeMs, seq: r.seq };
      }
      return Promise.resolve({ rows: page, next: page.length < rows.length ? last : null });
    },
    readRows(page) {
      if (page.length === 0) return Promise.resolve([]);
      const seqs = page.map((r) => r.seq);
      const rows = prepared('SELECT seq, json FROM fleet_findings WHERE seq IN (SELECT value FROM json_each(?))').all(JSON.stringify(seqs)) as { seq: number; json: string }[];
      const bySeq = new Map(rows.map((r) => [r.seq, r.json]));
      return Promise.resolve(seqs.map((s) => bySeq.get(s)).filter((j): j is string => j !== undefined));
    },
    agents() {
      const rows = db.prepare('SELECT json FROM fleet_agents ORDER BY agent').pluck().all() as string[];
      return Promise.resolve(rows.map((r) => JSON.parse(r) as AgentRecord));
    },
    tokenTrails(jtis) {
      const rows: TokenSighting[] = [];
      const totals = new Map<string, number>();
      for (const j of jtis) {
        rows.push(...(trailRows.all(j, j) as { jti: string; kind: SightingKind; agent: string; id: string; timeMs: number; json: string }[]));
        totals.set(j, trailCount.get(j) as number);
      }
      return Promise.resolve(trailsOf(jtis, rows, totals));
    },
    async retain(days, nowMs) {
      const cutoff = nowMs - days * 86_400_000;
      const sightings = db.prepare('DELETE FROM fleet_token_sightings WHERE (jti, kind, agent, id) IN (SELECT jti, kind, agent, id FROM fleet_token_sightings WHERE time_ms < ? LIMIT 500)');
      const step = db.prepare('DELETE FROM fleet_findings WHERE seq IN (SELECT seq FROM fleet_findings WHERE time_ms < ? LIMIT 500)');
      let deleted = 0;
      for (;;) {
        const n = step.run(cutoff).changes;
        deleted += n;
        if (n < 500) {
          while (sightings.run(cutoff).changes === 500) await new Promise((r) => setImmediate(r));
          return deleted;
        }
        // Let ingest requests in between steps.
        await new Promise((r) => setImmediate(r));
      }
    },
    close() {
      db.close();
      return Promise.resolve();
    },
  };
}

/**
 * Collectors before (agent, id) kept findings in the agent store's `findings` + `evidence` tables, with
 * no record of the sending agent. They are moved once, whole (evidence folded back into the JSON), under
 * agent "" so they stay queryable; the tables are then emptied so this never runs twice.
 */
function migrateLegacyRows(db: Db): void {
  const legacy = db.prepare('SELECT count(*) FROM findings').pluck().get() as number;
  if (legacy === 0) return;
  db.transaction(() => {
    db.exec(`
      INSERT OR IGNORE INTO fleet_findings (agent, id, revision, time_ms, stored_ms, severity, rule, host, container_id, bytes, json)
      SELECT '', f.id, 0, f.time_ms, f.stored_ms, f.severity, f.rule, f.host, f.container_id, 0,
             json_set(f.json, '$.evidence', json((SELECT coalesce(json_group_array(json_object('event_id', e.event_id, 'time', e.time, 'role', e.role, 'records', json(e.records))), '[]')
                                                   FROM (SELECT * FROM evidence WHERE finding_seq = f.seq ORDER BY ord) AS e)))
      FROM findings AS f ORDER BY f.seq;
      UPDATE fleet_findings SET bytes = length(CAST(json AS BLOB)) WHERE agent = '' AND bytes = 0;
      DELETE FROM evidence;
      DELETE FROM findings;
    `);
  })();
}

export function openCollectorStore(path: string): CollectorStore {
  return collectorStoreOn(openDatabase(path));
}
