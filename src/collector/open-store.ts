/**
 * Picks the collector's storage from its config: PostgreSQL when `storage.url` is set, else the
 * embedded SQLite file at `storage.path`.
 */
import type { Logger } from 'pino';
import type { CollectorConfig } from './config';
import { pgPoolConfig } from './pg-config';
import { DAY_MS } from './pg-partitions';
import { openPgCollectorStore } from './pg-store';
import { openCollectorStore, type CollectorStore } from './store';

export async function openCollectorStoreFor(config: CollectorConfig, logger?: Logger): Promise<CollectorStore> {
  if (config.pg === undefined) return openCollectorStore(config.storage.path);
  // Findings may be timed up to max_clock_skew_seconds ahead: their partitions must exist.
  const aheadDays = Math.max(config.pg.partitionsAheadDays, Math.ceil((config.max_clock_skew_seconds * 1000) / DAY_MS) + 1);
  let lastWarn = 0;
  return openPgCollectorStore(pgPoolConfig(config.pg), {
    retentionDays: config.storage.retention_days,
    aheadDays,
    onPoolError: (err) => {
      // An idle connection closed by the server (restart, failover): logged at most once a minute.
      if (Date.now() - lastWarn < 60_000) return;
      lastWarn = Date.now();
      logger?.warn({ error: err.message.slice(0, 200) }, 'a pooled PostgreSQL connection failed; new ones are opened as needed');
    },
  });
}
