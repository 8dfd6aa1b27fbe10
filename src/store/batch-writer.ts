/**
 * Buffers findings from the pipeline and writes them in one transaction per batch, off the hot path:
 * a batch is flushed when it reaches `maxBatch` (on the next turn of the event loop) or after
 * `flushIntervalMs`. When the database refuses a write (SQLITE_FULL on a full disk, I/O errors, a
 * busy lock) the findings stay in memory, bounded by `maxBuffered`, and the write is retried with
 * backoff; findings pushed out by that bound are counted in `dropped`, never lost silently.
 *
 * Incidents (src/detect/incidents.ts) are emitted again under the same id with a higher `revision`. A
 * revision that arrives while an older one of the same id still waits here takes its place (counted in
 * `coalesced`): the newer revision carries everything the older one did, so only the latest is written
 * and shipped, and a storm of updates while the disk is full holds one slot per incident, not one per
 * update, and pushes no other finding out.
 */
import type { Finding } from '../model/finding';

export interface FindingSink {
  insertFindings(findings: Finding[]): number;
}

export interface BatchWriterOptions {
  /** Longest a finding waits in memory before a write is attempted. */
  flushIntervalMs?: number;
  /** Findings per transaction; reaching it triggers a flush on the next event-loop turn. */
  maxBatch?: number;
  /** Findings kept in memory while writes fail; beyond it the oldest are dropped (and counted). */
  maxBuffered?: number;
  /** First retry delay after a failed write; doubles up to maxRetryIntervalMs. */
  retryIntervalMs?: number;
  maxRetryIntervalMs?: number;
  /** Called on each failed write (the daemon logs it at a bounded rate). */
  onError?: (err: Error) => void;
  /** Called when findings had to be dropped because the buffer bound was hit. */
  onDrop?: (count: number) => void;
}

export interface BatchWriterCounters {
  /** Findings handed to add(). */
  accepted: number;
  /** Findings stored as new rows. */
  written: number;
  /** Findings whose id was already stored (idempotent insert skipped them). */
  duplicates: number;
  /** Successful transactions. */
  flushes: number;
  /** Failed write attempts (each may cover many findings). */
  writeErrors: number;
  /** Findings dropped because writes kept failing and the memory bound was reached. */
  dropped: number;
  /** Incident revisions replaced, before being written, by a later revision of the same id (not a loss). */
  coalesced: number;
  /** Findings waiting in memory now. */
  buffered: number;
  /** Code (e.g. SQLITE_FULL) or message of the last failed write, null once a write succeeds. */
  lastError: string | null;
}

/** A buffered finding; a later revision of the same incident replaces `f` in place. */
interface Slot {
  f: Finding;
}

export class BatchWriter {
  private buffer: Slot[] = [];
  /** Incident id -> its slot while it waits in the buffer. */
  private readonly waiting = new Map<string, Slot>();
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private retryDelayMs: number;
  private failing = false;
  private closed = false;
  private readonly flushIntervalMs: number;
  private readonly maxBatch: number;
  private readonly maxBuffered: number;
  private readonly retryIntervalMs: number;
  private readonly maxRetryIntervalMs: number;
  private readonly c: BatchWriterCounters = {
    accepted: 0,
    written: 0,
    duplicates: 0,
    flushes: 0,
    writeErrors: 0,
    dropped: 0,
    coalesced: 0,
    buffered: 0,
    lastError: null,
  };

  constructor(
    private readonly sink: FindingSink,
    private readonly options: BatchWriterOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? 250;
    this.maxBatch = Math.max(1, options.maxBatch ?? 500);
    this.maxBuffered = Math.max(this.maxBatch, options.maxBuffered ?? 10_000);
    this.retryIntervalMs = options.retryIntervalMs ?? 1000;
    this.maxRetryIntervalMs = options.maxRetryIntervalMs ?? 30_000;
    this.retryDelayMs = this.retryIntervalMs;
  }

  get counters(): Readonly<BatchWriterCounters> {
    this.c.buffered = this.buffer.length;
    return { ...this.c };
  }

  add(finding: Finding): void {
    if (this.closed) throw new Error('BatchWriter: add() after close()');
    this.c.accepted++;
    if (finding.revision !== undefined) {
      const slot = this.waiting.get(finding.id);
      if (slot) {
        if ((finding.revision ?? 0) > (slot.f.revision ?? 0)) slot.f = finding;
        this.c.coalesced++;
        return; // the slot is already scheduled
      }
      const fresh = { f: finding };
      this.waiting.set(finding.id, fresh);
      this.buffer.push(fresh);
    } else this.buffer.push({ f: finding });
    if (this.buffer.length > this.maxBuffered) {
      const excess = this.buffer.length - this.maxBuffered;
      // Keep the newest: an attacker who fills the disk first must not thereby hide what follows.
      this.release(this.buffer.splice(0, excess));
      this.c.dropped += excess;
      this.options.onDrop?.(excess);
    }
    if (this.failing) return; // the retry timer is already set
    if (this.buffer.length >= this.maxBatch) this.scheduleImmediate();
    else this.scheduleTimer(this.flushIntervalMs);
  }

  /**
   * Writes everything buffered now (used on shutdown and by the timers). Returns true when the
   * buffer is empty afterwards; on failure the findings stay buffered and a retry is scheduled.
   */
  flush(): boolean {
    this.clearSchedule();
    while (this.buffer.length > 0) {
      const slots = this.buffer.length <= this.maxBatch ? this.buffer : this.buffer.slice(0, this.maxBatch);
      const batch = slots.map((s) => s.f);
      const n = batch.length;
      try {
        const added = this.sink.insertFindings(batch);
        this.c.written += added;
        this.c.duplicates += n - added;
        this.c.flushes++;
      } catch (err) {
        this.c.writeErrors++;
        const e = err instanceof Error ? err : new Error(String(err));
        this.c.lastError = (e as { code?: string }).code ?? e.message;
        this.options.onError?.(e);
        this.failing = true;
        if (!this.closed) this.scheduleTimer(this.retryDelayMs);
        this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.maxRetryIntervalMs);
        return false;
      }
      this.release(slots);
      if (slots === this.buffer) this.buffer = [];
      else this.buffer.splice(0, n);
    }
    this.failing = false;
    this.c.lastError = null;
    this.retryDelayMs = this.retryIntervalMs;
    return true;
  }

  /** Final flush and no more timers. Returns false when findings could not be written (see counters.buffered). */
  close(): boolean {
    this.closed = true;
    const ok = this.flush();
    this.clearSchedule();
    return ok;
  }

  /** Slots leaving the buffer (written or dropped): a later revision of theirs starts a new slot. */
  private release(slots: readonly Slot[]): void {
    for (const s of slots) if (this.waiting.get(s.f.id) === s) this.waiting.delete(s.f.id);
  }

  private scheduleTimer(ms: number): void {
    if (this.timer || this.immediate) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, ms);
    this.timer.unref();
  }

  private scheduleImmediate(): void {
    if (this.immediate) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.immediate = setImmediate(() => {
      this.immediate = null;
      this.flush();
    });
  }

  private clearSchedule(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }
}
