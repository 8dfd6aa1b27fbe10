import type { Migration } from './index';

/**
 * First schema. `findings.seq` is the commit order (AUTOINCREMENT so a seq is never reused after
 * retention deletes the newest rows, which would confuse the per-output ship cursors); `id` is the
 * detection's stable id and UNIQUE so that re-inserting the same finding is a no-op.
 * Evidence lives in its own table, keyed by the finding's seq (an integer key keeps that index small).
 */
export const initial: Migration = {
  version: 1,
  name: 'initial',
  sql: `
    CREATE TABLE findings (
      seq          INTEGER PRIMARY KEY AUTOINCREMENT,
      id           TEXT    NOT NULL UNIQUE,
      time_ms      INTEGER NOT NULL,
      stored_ms    INTEGER NOT NULL,
      severity     INTEGER NOT NULL,
      rule         TEXT    NOT NULL,
      host         TEXT    NOT NULL,
      container_id TEXT,
      pod_uid      TEXT,
      source       TEXT    NOT NULL,
      json         TEXT    NOT NULL
    );
    CREATE INDEX findings_time ON findings (time_ms);
    CREATE INDEX findings_rule_time ON findings (rule, time_ms);
    CREATE INDEX findings_severity_time ON findings (severity, time_ms);
    CREATE INDEX findings_container ON findings (container_id) WHERE container_id IS NOT NULL;
    CREATE INDEX findings_host_time ON findings (host, time_ms);

    CREATE TABLE evidence (
      finding_seq INTEGER NOT NULL,
      ord         INTEGER NOT NULL,
      event_id    TEXT    NOT NULL,
      time        TEXT    NOT NULL,
      role        TEXT    NOT NULL,
      records     TEXT    NOT NULL,
      PRIMARY KEY (finding_seq, ord)
    ) WITHOUT ROWID;

    CREATE TABLE ship_cursor (
      output     TEXT PRIMARY KEY,
      seq        INTEGER NOT NULL,
      updated_ms INTEGER NOT NULL
    );

    CREATE TABLE agent_state (
      key        TEXT PRIMARY KEY,
      value      TEXT NOT NULL,
      updated_ms INTEGER NOT NULL
    );
  `,
};
