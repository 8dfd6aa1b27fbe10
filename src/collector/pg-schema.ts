/**
 * The collector's PostgreSQL schema, as numbered migrations recorded in `credwatch_schema_migrations`.
 * Every replica runs `migrate` at start; an advisory lock makes them take turns, so two replicas
 * starting together apply each migration once. A database newer than this collector (a later version
 * migrated it) is refused rather than written with a schema it does not know.
 *
 * Tables:
 *  - fleet_findings: the findings, range-partitioned by finding time (daily partitions, see
 *    pg-partitions.ts), JSON kept as the validated text it was stored as. No unique key here: a unique
 *    index on a partitioned table must contain the partition key, and (agent, id) must be unique
 *    whatever time a resend carries.
 *  - fleet_finding_keys: one row per (agent, id): the stored revision and where its row is (time, seq).
 *    It is what makes ingest idempotent, and what a higher revision replaces under a row lock.
 *  - fleet_agents: per-agent counters (first/last seen, batches, findings, duplicates).
 *  - fleet_token_sightings (2): the fleet join's state (token-join.ts): token reads and API requests by
 *    jti, written in each batch's transaction so every replica joins what any other ingested; deleted
 *    with retention by time.
 */
import type { PoolClient } from 'pg';

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'partitioned findings, (agent, id) keys, agents',
    sql: `
      CREATE SEQUENCE fleet_finding_seq AS bigint CACHE 100;
      CREATE TABLE fleet_findings (
        time_ms      bigint   NOT NULL,
        seq          bigint   NOT NULL,
        agent        text     NOT NULL,
        id           text     NOT NULL,
        revision     integer  NOT NULL,
        stored_ms    bigint   NOT NULL,
        severity     smallint NOT NULL,
        rule         text     NOT NULL,
        host         text     NOT NULL,
        container_id text,
        bytes        integer  NOT NULL,
        json         text     NOT NULL
      ) PARTITION BY RANGE (time_ms);
      CREATE INDEX fleet_findings_time ON fleet_findings (time_ms, seq);
      CREATE TABLE fleet_finding_keys (
        agent    text    NOT NULL,
        id       text    NOT NULL,
        revision integer NOT NULL,
        time_ms  bigint  NOT NULL,
        seq      bigint  NOT NULL,
        PRIMARY KEY (agent, id)
      );
      -- Retention deletes the keys of dropped partitions by time.
      CREATE INDEX fleet_finding_keys_time ON fleet_finding_keys (time_ms);
      CREATE TABLE fleet_agents (
        agent         text   PRIMARY KEY,
        first_seen_ms bigint NOT NULL,
        last_seen_ms  bigint NOT NULL,
        last_host     text,
        batches       bigint NOT NULL,
        findings      bigint NOT NULL,
        duplicates    bigint NOT NULL
      );
    `,
  },
  {
    version: 2,
    description: 'fleet token join state (token reads and requests by jti)',
    sql: `
      CREATE TABLE fleet_token_sightings (
        jti     text   NOT NULL,
        kind    text   NOT NULL CHECK (kind IN ('read', 'request')),
        agent   text   NOT NULL,
        id      text   NOT NULL,
        time_ms bigint NOT NULL,
        json    text   NOT NULL,
        PRIMARY KEY (jti, kind, agent, id)
      );
      CREATE INDEX fleet_token_sightings_time ON fleet_token_sightings (time_ms);
    `,
  },
];

/** Any constant: the key of the advisory lock that serialises schema changes between replicas. */
export const SCHEMA_LOCK = 0x63726564; // "cred"

/** Applies the migrations the database lacks, in one transaction; returns the versions applied. */
export async function migrate(c: PoolClient, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const applied: number[] = [];
  await c.query('BEGIN');
  try {
    await c.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    await c.query(`CREATE TABLE IF NOT EXISTS credwatch_schema_migrations (
      version     integer PRIMARY KEY,
      description text NOT NULL,
      applied_at  timestamptz NOT NULL DEFAULT now()
    )`);
    const r = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM credwatch_schema_migrations');
    const current = r.rows[0]?.v ?? 0;
    const known = migrations.reduce((m, x) => Math.max(m, x.version), 0);
    if (current > known) {
      throw new Error(`the database's schema is version ${current}, newer than this collector knows (${known}): upgrade the collector`);
    }
    for (const m of migrations) {
      if (m.version <= current) continue;
      await c.query(m.sql);
      await c.query('INSERT INTO credwatch_schema_migrations (version, description) VALUES ($1, $2)', [m.version, m.description]);
      applied.push(m.version);
    }
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return applied;
}
