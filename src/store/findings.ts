/**
 * The findings and evidence tables: idempotent batch insert, filtered queries (newest first), lookup by
 * id or unique id prefix. A finding is stored as its JSON (without evidence) plus the columns the CLI
 * filters on; evidence rows are stored separately so listing never has to parse them twice.
 *
 * Incidents (src/detect/incidents.ts) are written again under the same id with a higher `revision`:
 * such a write replaces the stored row and its evidence, and the new row takes a new `seq`, so every
 * output's cursor sees the update as pending and ships it again (at least once). A revision that is
 * not higher than the stored one is skipped like any repeat.
 */
import type { Statement } from 'better-sqlite3';
import { SEVERITIES, severityRank, type Evidence, type Finding } from '../model/finding';
import type { FindingsQuery } from './types';
import type { Db } from './db';

/** Upper bound for a text prefix range scan: sorts after every valid UTF-8 string that starts with it. */
const PREFIX_END = '\u{10FFFF}';

export class AmbiguousIdError extends Error {
  readonly exitCode = 2;
  constructor(
    readonly prefix: string,
    readonly candidates: string[],
  ) {
    super(`finding id prefix "${prefix}" is ambiguous: it matches ${candidates.join(', ')}${candidates.length >= 5 ? ', ...' : ''}`);
    this.name = 'AmbiguousIdError';
  }
}

interface FindingRow {
  seq: number;
  json: string;
}

interface EvidenceRow {
  event_id: string;
  time: string;
  role: string;
  records: string;
}

export class FindingsTable {
  private insertFinding?: Statement;
  private insertEvidence?: Statement;
  private insertMany?: (findings: readonly Finding[], nowMs: number) => number;
  private readonly selectEvidence: Statement<[number], EvidenceRow>;
  private readonly queryCache = new Map<string, Statement>();

  constructor(private readonly db: Db) {
    this.selectEvidence = db.prepare('SELECT event_id, time, role, records FROM evidence WHERE finding_seq = ? ORDER BY ord');
  }

  /**
   * Inserts in one transaction; a finding whose id is already stored is skipped unless it carries a
   * higher revision, which replaces it. Returns how many were stored (new or replacing).
   */
  insert(findings: readonly Finding[], nowMs = Date.now()): number {
    if (findings.length === 0) return 0;
    if (!this.insertMany) this.prepareWriter();
    return this.insertMany!(findings, nowMs);
  }

  private prepareWriter(): void {
    const insertFinding = this.db.prepare(
      `INSERT OR IGNORE INTO findings (id, time_ms, stored_ms, severity, rule, host, container_id, pod_uid, source, json)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const insertEvidence = this.db.prepare(
      'INSERT INTO evidence (finding_seq, ord, event_id, time, role, records) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.insertFinding = insertFinding;
    this.insertEvidence = insertEvidence;
    const storedRevision = this.db.prepare<[string], { seq: number; revision: number | null }>(
      "SELECT seq, json_extract(json, '$.revision') AS revision FROM findings WHERE id = ?",
    );
    const deleteEvidence = this.db.prepare('DELETE FROM evidence WHERE finding_seq = ?');
    const deleteFinding = this.db.prepare('DELETE FROM findings WHERE seq = ?');
    this.insertMany = this.db.transaction((findings: readonly Finding[], nowMs: number): number => {
      let added = 0;
      for (const f of findings) {
        if (f.revision !== undefined && f.revision > 1) {
          const stored = storedRevision.get(f.id);
          if (stored) {
            if ((stored.revision ?? 0) >= f.revision) continue; // as new or newer already stored
            deleteEvidence.run(stored.seq);
            deleteFinding.run(stored.seq);
          }
        }
        const timeMs = Date.parse(f.time);
        const { evidence, ...rest } = f;
        const info = insertFinding.run(
          f.id,
          Number.isFinite(timeMs) ? timeMs : nowMs,
          nowMs,
          severityRankOrZero(f.severity),
          f.rule,
          f.host,
          f.container?.id ?? null,
          f.container?.pod_uid ?? null,
          f.source,
          JSON.stringify(rest),
        );
        if (info.changes === 0) continue; // already stored: idempotent
        added++;
        const seq = Number(info.lastInsertRowid);
        (evidence ?? []).forEach((e, ord) => {
          insertEvidence.run(seq, ord, e.event_id, e.time, e.role, JSON.stringify(e.records));
        });
      }
      return added;
    });
  }

  /** Newest first (by finding time, then commit order). */
  query(q: FindingsQuery): Finding[] {
    return this.queryRows(q).map((r) => this.hydrate(r));
  }

  queryRows(q: FindingsQuery): FindingRow[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.sinceMs !== undefined) {
      where.push('time_ms >= ?');
      params.push(q.sinceMs);
    }
    if (q.untilMs !== undefined) {
      where.push('time_ms < ?');
      params.push(q.untilMs);
    }
    if (q.minSeverity !== undefined && severityRank(q.minSeverity) > 0) {
      where.push('severity >= ?');
      params.push(severityRank(q.minSeverity));
    }
    if (q.rule !== undefined) {
      where.push('rule = ?');
      params.push(q.rule);
    }
    if (q.container !== undefined && q.container !== '') {
      where.push('container_id >= ? AND container_id < ?');
      params.push(q.container, q.container + PREFIX_END);
    }
    if (q.host !== undefined) {
      where.push('host = ?');
      params.push(q.host);
    }
    const sql =
      'SELECT seq, json FROM findings' +
      (where.length ? ' WHERE ' + where.join(' AND ') : '') +
      ' ORDER BY time_ms DESC, seq DESC LIMIT ?';
    params.push(q.limit !== undefined && q.limit >= 0 ? Math.floor(q.limit) : -1);
    let stmt = this.queryCache.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.queryCache.set(sql, stmt);
    }
    return stmt.all(...params) as FindingRow[];
  }

  /** By exact id, else by a prefix that matches exactly one id (AmbiguousIdError when it matches several). */
  get(idOrPrefix: string): Finding | null {
    if (idOrPrefix === '') return null;
    const exact = this.db.prepare('SELECT seq, json FROM findings WHERE id = ?').get(idOrPrefix) as FindingRow | undefined;
    if (exact) return this.hydrate(exact);
    const rows = this.db
      .prepare('SELECT seq, id, json FROM findings WHERE id >= ? AND id < ? ORDER BY id LIMIT 5')
      .all(idOrPrefix, idOrPrefix + PREFIX_END) as (FindingRow & { id: string })[];
    if (rows.length === 0) return null;
    if (rows.length > 1) throw new AmbiguousIdError(idOrPrefix, rows.map((r) => r.id));
    return this.hydrate(rows[0]!);
  }

  countSince(ms: number): number {
    return (this.db.prepare('SELECT count(*) AS n FROM findings WHERE time_ms >= ?').get(ms) as { n: number }).n;
  }

  /** Rebuilds the Finding from its JSON and its evidence rows. */
  hydrate(row: FindingRow): Finding {
    const f = JSON.parse(row.json) as Omit<Finding, 'evidence'>;
    const evidence: Evidence[] = this.selectEvidence.all(row.seq).map((e) => ({
      event_id: e.event_id,
      time: e.time,
      role: e.role,
      records: JSON.parse(e.records) as Evidence['records'],
    }));
    return { ...f, evidence };
  }
}

function severityRankOrZero(s: string): number {
  const r = (SEVERITIES as readonly string[]).indexOf(s);
  return r < 0 ? 0 : r;
}
