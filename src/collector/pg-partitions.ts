/**
 * Daily range partitions of fleet_findings (UTC days of the finding's time), named
 * fleet_findings_pYYYYMMDD. Ingest accepts times from now - retention_days to now + clock skew, so the
 * partitions for that window are created ahead (at start and with each retention run, and on demand
 * when a batch falls outside what this process knows exists). Retention drops whole partitions, which
 * costs the same whatever they hold, instead of deleting rows.
 *
 * Every change runs under one advisory lock, so replicas doing maintenance at once take turns.
 */
import type { PoolClient } from 'pg';

export const DAY_MS = 86_400_000;
const PREFIX = 'fleet_findings_p';
const NAME = /^fleet_findings_p(\d{4})(\d{2})(\d{2})$/;
/** Advisory lock key for partition changes (distinct from the schema lock). */
const PARTITION_LOCK = 0x63726570; // "crep"
/** At most this many partitions made in one call: a bug or a hostile time must not create thousands. */
const MAX_NEW = 4000;

export function dayStart(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

export function partitionName(dayMs: number): string {
  const d = new Date(dayMs);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  return `${PREFIX}${d.getUTCFullYear()}${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}`;
}

/** The day a partition's name stands for; null for a table that is not one of ours. */
export function partitionDay(name: string): number | null {
  const m = NAME.exec(name);
  if (!m) return null;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return partitionName(ms) === name ? ms : null;
}

/** Days (start ms) of the partitions that exist, ascending. */
export async function listPartitions(c: PoolClient): Promise<number[]> {
  const r = await c.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'fleet_findings'::regclass`,
  );
  return r.rows.map((x) => partitionDay(x.name)).filter((d): d is number => d !== null).sort((a, b) => a - b);
}

/** Creates the missing partitions for the days from `fromMs` to `toMs` (inclusive); returns how many. */
export async function ensurePartitions(c: PoolClient, fromMs: number, toMs: number): Promise<number> {
  const first = dayStart(fromMs);
  const last = dayStart(toMs);
  if ((last - first) / DAY_MS > MAX_NEW) throw new Error(`refusing to create more than ${MAX_NEW} daily partitions at once`);
  const have = new Set(await listPartitions(c));
  const missing: number[] = [];
  for (let d = first; d <= last; d += DAY_MS) if (!have.has(d)) missing.push(d);
  if (missing.length === 0) return 0;
  await c.query('BEGIN');
  try {
    await c.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK]);
    for (const d of missing) {
      // Names and bounds are ours (digits only), never taken from input.
      await c.query(`CREATE TABLE IF NOT EXISTS ${partitionName(d)} PARTITION OF fleet_findings FOR VALUES FROM (${d}) TO (${d + DAY_MS})`);
    }
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return missing.length;
}

export interface DropResult {
  partitions: number;
  findings: number;
  /** Findings before this time are gone (0 when nothing was dropped). */
  beforeMs: number;
}

/**
 * Drops the partitions whose whole day is older than `cutoffMs - graceMs`, counting their rows first
 * (every removal is counted). The grace keeps a day a little longer than retention, so a replica whose
 * clock is behind never writes into a partition another replica just dropped.
 */
export async function dropPartitionsBefore(c: PoolClient, cutoffMs: number, graceMs: number): Promise<DropResult> {
  const out: DropResult = { partitions: 0, findings: 0, beforeMs: 0 };
  const old = (await listPartitions(c)).filter((d) => d + DAY_MS <= cutoffMs - graceMs);
  for (const d of old) {
    await c.query('BEGIN');
    try {
      await c.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK]);
      const n = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${partitionName(d)}`).catch((err: { code?: string }) => {
        if (err.code === '42P01') return null; // another replica dropped it meanwhile
        throw err;
      });
      if (n !== null) {
        await c.query(`DROP TABLE ${partitionName(d)}`);
        out.findings += Number(n.rows[0]?.n ?? 0);
        out.partitions++;
      }
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    out.beforeMs = Math.max(out.beforeMs, d + DAY_MS);
  }
  return out;
}
