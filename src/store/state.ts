/** Small durable key/value state (source offsets, last ship time, the daemon's status snapshot). */
import type { Statement } from 'better-sqlite3';
import type { StateStore } from './types';
import type { Db } from './db';

export class State implements StateStore {
  private readonly selectValue: Statement<[string], { value: string; updated_ms: number }>;
  private upsert?: Statement;

  constructor(private readonly db: Db) {
    this.selectValue = db.prepare('SELECT value, updated_ms FROM agent_state WHERE key = ?');
  }

  get(key: string): string | undefined {
    return this.selectValue.get(key)?.value;
  }

  /** When the key was last written (epoch ms), or undefined. */
  updatedMs(key: string): number | undefined {
    return this.selectValue.get(key)?.updated_ms;
  }

  set(key: string, value: string): void {
    this.upsert ??= this.db.prepare(
      `INSERT INTO agent_state (key, value, updated_ms) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms`,
    );
    this.upsert.run(key, value, Date.now());
  }
}
