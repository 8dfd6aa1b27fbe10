/**
 * Retention by age and by size. Work is cut into small transactions (default 500 findings each) so
 * the daemon's batch writer never waits long behind it; the async form yields to the event loop
 * between steps. Space goes back to the file system through incremental_vacuum (the database is
 * created with auto_vacuum=INCREMENTAL), also in bounded steps.
 */
import type { Db } from './db';

export interface RetentionPolicy {
  /** Delete findings whose time is older than this many days. Absent/null/0: no age limit. */
  maxAgeDays?: number | null;
  /** Delete oldest findings while the live data (pages not on the free list) exceeds this. Absent/null/0: no limit. */
  maxBytes?: number | null;
}

export interface RetentionResult {
  deleted: number;
}

const DAY_MS = 86_400_000;
const DEFAULT_BATCH = 500;
const VACUUM_PAGES_PER_STEP = 256;

/** One bounded transaction per step; yields the number of findings deleted in that step. */
export function* retentionSteps(db: Db, policy: RetentionPolicy, nowMs: number, batchSize = DEFAULT_BATCH): Generator<number, void, void> {
  const oldestBefore = db.prepare('SELECT seq FROM findings WHERE time_ms < ? ORDER BY time_ms, seq LIMIT ?').pluck();
  const oldest = db.prepare('SELECT seq FROM findings ORDER BY time_ms, seq LIMIT ?').pluck();
  const delEvidence = db.prepare('DELETE FROM evidence WHERE finding_seq IN (SELECT value FROM json_each(?))');
  const delFindings = db.prepare('DELETE FROM findings WHERE seq IN (SELECT value FROM json_each(?))');
  const deleteSeqs = db.transaction((seqs: number[]): number => {
    const list = JSON.stringify(seqs);
    delEvidence.run(list);
    return delFindings.run(list).changes;
  });

  if (policy.maxAgeDays && policy.maxAgeDays > 0) {
    const cutoff = nowMs - policy.maxAgeDays * DAY_MS;
    for (;;) {
      const seqs = oldestBefore.all(cutoff, batchSize) as number[];
      if (seqs.length === 0) break;
      yield deleteSeqs(seqs);
      if (seqs.length < batchSize) break;
    }
  }

  if (policy.maxBytes && policy.maxBytes > 0) {
    while (liveBytes(db) > policy.maxBytes) {
      const seqs = oldest.all(batchSize) as number[];
      if (seqs.length === 0) break;
      yield deleteSeqs(seqs);
    }
  }

  // Return freed pages to the file system; each pragma call is one short write transaction.
  while ((db.pragma('freelist_count', { simple: true }) as number) > 0) {
    db.pragma(`incremental_vacuum(${VACUUM_PAGES_PER_STEP})`);
    yield 0;
  }
}

/** Bytes held by live pages: the file minus its free list (the WAL is bounded by journal_size_limit). */
export function liveBytes(db: Db): number {
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pages = db.pragma('page_count', { simple: true }) as number;
  const free = db.pragma('freelist_count', { simple: true }) as number;
  return (pages - free) * pageSize;
}

export function enforceRetention(db: Db, policy: RetentionPolicy, nowMs: number, batchSize = DEFAULT_BATCH): RetentionResult {
  let deleted = 0;
  for (const n of retentionSteps(db, policy, nowMs, batchSize)) deleted += n;
  return { deleted };
}

/** Same as enforceRetention, but lets the event loop run between steps. */
export async function enforceRetentionAsync(db: Db, policy: RetentionPolicy, nowMs: number, batchSize = DEFAULT_BATCH): Promise<RetentionResult> {
  let deleted = 0;
  for (const n of retentionSteps(db, policy, nowMs, batchSize)) {
    deleted += n;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { deleted };
}

export interface RetentionTimerOptions {
  /** Time between runs; the first run happens after `firstRunMs` (default: 10 s, so start-up stays quick). */
  intervalMs?: number;
  firstRunMs?: number;
  onResult?: (r: RetentionResult, ms: number) => void;
  /** A failed run (e.g. SQLITE_FULL, SQLITE_BUSY) is reported here and retried at the next interval. */
  onError?: (err: Error) => void;
  now?: () => number;
}

export interface RetentionTimer {
  /** Runs now unless a run is in progress; resolves when it ends. */
  runNow(): Promise<void>;
  stop(): void;
}

/**
 * Runs retention on a timer for the daemon and the collector: never two runs at once, errors
 * reported and not thrown (a full disk must not stop the timer: retention is what frees space), and
 * the policy read at each run so that a configuration reload takes effect.
 */
export function startRetentionTimer(
  target: { enforceRetentionAsync(policy: RetentionPolicy, nowMs: number): Promise<RetentionResult> },
  policy: () => RetentionPolicy,
  opts: RetentionTimerOptions = {},
): RetentionTimer {
  const now = opts.now ?? Date.now;
  let running: Promise<void> | null = null;
  let stopped = false;
  const run = (): Promise<void> => {
    if (running) return running;
    const t0 = Date.now();
    running = target
      .enforceRetentionAsync(policy(), now())
      .then(
        (r) => opts.onResult?.(r, Date.now() - t0),
        (err: unknown) => opts.onError?.(err instanceof Error ? err : new Error(String(err))),
      )
      .finally(() => {
        running = null;
      });
    return running;
  };
  let timer: NodeJS.Timeout = setTimeout(function tick() {
    void run().then(() => {
      if (!stopped) timer = setTimeout(tick, opts.intervalMs ?? 3_600_000).unref();
    });
  }, opts.firstRunMs ?? 10_000).unref();
  return {
    runNow: run,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
