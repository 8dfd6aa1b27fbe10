/**
 * The outbox: the findings table read through one cursor per output (ship_cursor). Pending means
 * "seq above the output's acknowledged cursor"; nothing is deleted on ack, so a receiver that is down
 * loses nothing until retention removes the finding.
 */
import type { Statement } from 'better-sqlite3';
import type { Finding } from '../model/finding';
import type { OutboxReader } from './types';
import type { Db } from './db';
import type { FindingsTable } from './findings';

export class Outbox implements OutboxReader {
  private readonly selectCursor: Statement<[string], { seq: number }>;
  private readonly selectPending: Statement<[number, number], { seq: number; json: string }>;
  private readonly countAbove: Statement<[number], { n: number }>;
  private upsertCursor?: Statement;

  constructor(
    private readonly db: Db,
    private readonly findings: FindingsTable,
  ) {
    this.selectCursor = db.prepare('SELECT seq FROM ship_cursor WHERE output = ?');
    this.selectPending = db.prepare('SELECT seq, json FROM findings WHERE seq > ? ORDER BY seq LIMIT ?');
    this.countAbove = db.prepare('SELECT count(*) AS n FROM findings WHERE seq > ?');
  }

  /** The acknowledged cursor of an output (0 when it never acknowledged anything). */
  cursor(output: string): number {
    return this.selectCursor.get(output)?.seq ?? 0;
  }

  pending(output: string, limit: number): { seq: number; finding: Finding }[] {
    const rows = this.selectPending.all(this.cursor(output), Math.max(0, Math.floor(limit)));
    return rows.map((r) => ({ seq: r.seq, finding: this.findings.hydrate(r) }));
  }

  /** Moves the cursor forward only: a late or repeated ack never re-opens delivered findings. */
  ack(output: string, seq: number): void {
    this.upsertCursor ??= this.db.prepare(
      `INSERT INTO ship_cursor (output, seq, updated_ms) VALUES (?, ?, ?)
       ON CONFLICT (output) DO UPDATE SET seq = max(seq, excluded.seq), updated_ms = excluded.updated_ms`,
    );
    this.upsertCursor.run(output, seq, Date.now());
  }

  depth(output: string): number {
    return this.countAbove.get(this.cursor(output))?.n ?? 0;
  }

  /** Outputs that have acknowledged at least once, with their cursor and last ack time. */
  outputs(): { output: string; seq: number; updatedMs: number }[] {
    return this.db.prepare('SELECT output, seq, updated_ms AS updatedMs FROM ship_cursor ORDER BY output').all() as {
      output: string;
      seq: number;
      updatedMs: number;
    }[];
  }
}
