/**
 * Retention by age and by size, respecting delivery. Age is the age of storage (stored_ms), not of
 * the event: a finding replayed or shipped late from a 40-day-old event is kept for the full period
 * from the moment it was stored. A finding that a configured output has not acknowledged is never
 * deleted by age; only the size limit may delete it, last, and every such deletion is counted
 * (`deletedUndelivered`) so the caller can log it and show it as a drop.
 * Work is cut into small transactions (default 500 findings each) so
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
  /**
   * Names of the configured outputs. A finding above any of their acknowledged cursors is
   * undelivered. Absent or empty: no outputs, every finding counts as delivered.
   */
  outputs?: readonly string[];
}

export interface RetentionResult {
  deleted: number;
  /** Of `deleted`: findings some output had not delivered, deleted because the size limit forced it. */
  deletedUndelivered: number;
}

const DAY_MS = 86_400_000;
const DEFAULT_BATCH = 500;
const VACUUM_PAGES_PER_STEP = 256;
/**
 * The size limit deletes in smaller steps and re-measures after each one, so it stops close to the
 * limit instead of overshooting by up to a whole age-sized batch.
 */
const SIZE_BATCH = 50;

/** Highest seq every configured output has acknowledged (Infinity when there are no outputs). */
export function deliveredThrough(db: Db, outputs: readonly string[] | undefined): number {
  if (!outputs || outputs.length === 0) return Number.MAX_SAFE_INTEGER;
  const get = db.prepare('SELECT seq FROM ship_cursor WHERE output = ?').pluck();
  let min = Number.MAX_SAFE_INTEGER;
  for (const name of outputs) min = Math.min(min, (get.get(name) as number | undefined) ?? 0);
  return min;
}

export interface RetentionStep {
  deleted: number;
  undelivered: number;
}

/** One bounded transaction per step; yields what was deleted in that step. */
export function* retentionSteps(db: Db, policy: RetentionPolicy, nowMs: number, batchSize = DEFAULT_BATCH): Generator<RetentionStep, void, void> {
  // seq order is storage order, so "stored before the cutoff" is a prefix of the primary key.
  const deliveredStoredBefore = db.prepare('SELECT seq FROM findings WHERE seq <= ? AND stored_ms < ? ORDER BY seq LIMIT ?').pluck();
  const oldestDelivered = db.prepare('SELECT seq FROM findings WHERE seq <= ? ORDER BY seq LIMIT ?').pluck();
  const oldest = db.prepare('SELECT seq FROM findings ORDER BY seq LIMIT ?').pluck();
  const delEvidence = db.prepare('DELETE FROM evidence WHERE finding_seq IN (SELECT value FROM json_each(?))');
  const delFindings = db.prepare('DELETE FROM findings WHERE seq IN (SELECT value FROM json_each(?))');
  const deleteSeqs = db.transaction((seqs: number[]): number => {
    const list = JSON.stringify(seqs);
    delEvidence.run(list);
    return delFindings.run(list).changes;
  });

  const delivered = deliveredThrough(db, policy.outputs);

  if (policy.maxAgeDays && policy.maxAgeDays > 0) {
    const cutoff = nowMs - policy.maxAgeDays * DAY_MS;
    for (;;) {
      const seqs = deliveredStoredBefore.all(delivered, cutoff, batchSize) as number[];
      if (seqs.length === 0) break;
      yield { deleted: deleteSeqs(seqs), undelivered: 0 };
      if (seqs.length < batchSize) break;
    }
  }

  if (policy.maxBytes && policy.maxBytes > 0) {
    const step = Math.max(1, Math.min(batchSize, SIZE_BATCH));
    // Delivered findings go first; undelivered ones only when nothing delivered is left.
    while (liveBytes(db) > policy.maxBytes) {
      const seqs = oldestDelivered.all(delivered, step) as number[];
      if (seqs.length === 0) break;
      yield { deleted: deleteSeqs(seqs), undelivered: 0 };
    }
    while (liveBytes(db) > policy.maxBytes) {
      const seqs = oldest.all(step) as number[];
      if (seqs.length === 0) break;
      const n = deleteSeqs(seqs);
      yield { deleted: n, undelivered: n };
    }
  }

  // Return freed pages to the file system; each pragma call is one short write transaction.
  while ((db.pragma('freelist_count', { simple: true }) as number) > 0) {
    db.pragma(`incremental_vacuum(${VACUUM_PAGES_PER_STEP})`);
    yield { deleted: 0, undelivered: 0 };
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
  const r: RetentionResult = { deleted: 0, deletedUndelivered: 0 };
  for (const step of retentionSteps(db, policy, nowMs, batchSize)) addStep(r, step);
  return r;
}

/** Same as enforceRetention, but lets the event loop run between steps. */
export async function enforceRetentionAsync(db: Db, policy: RetentionPolicy, nowMs: number, batchSize = DEFAULT_BATCH): Promise<RetentionResult> {
  const r: RetentionResult = { deleted: 0, deletedUndelivered: 0 };
  for (const step of retentionSteps(db, policy, nowMs, batchSize)) {
    addStep(r, step);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return r;
}

function addStep(r: RetentionResult, step: RetentionStep): void {
  r.deleted += step.deleted;
  r.deletedUndelivered += step.undelivered;
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
