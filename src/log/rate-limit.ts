/**
 * The one policy for a log line that can repeat under load or attack (drops, bad input lines, a
 * failing output): at most one line per interval, and the line that is written says how many were
 * held back since the last. Nothing held back is lost: the next line, or a final flush, carries its
 * count (and every cause is also a counter in /metrics and `credwatch status`).
 *
 * LogWindow is the window for one cause; RateLimitedLog keeps one window per cause name. The
 * shipper (one window per output, reopened when the failure changes) and the kube audit reader
 * (one window per file) use LogWindow directly.
 */

/** The part of a logger this needs (pino's, or a source's structural logger). */
export interface WarnLogger {
  warn(obj: object, msg: string): void;
}

export class LogWindow {
  private lastAt = -Infinity;
  private held = 0;
  /** Every occurrence counted, written or held back. */
  total = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Counts `n` occurrences. Returns null when a line was written less than the interval ago (they
   * are held back), else the number held back before these, which the caller's line reports.
   */
  take(n = 1): number | null {
    this.total += n;
    const t = this.now();
    if (t - this.lastAt < this.intervalMs) {
      this.held += n;
      return null;
    }
    const held = this.held;
    this.held = 0;
    this.lastAt = t;
    return held;
  }

  /** The next occurrence is written at once (its cause changed, or the trouble ended); the held count stays. */
  reopen(): void {
    this.lastAt = -Infinity;
  }

  /** Held back and not yet written; a final line takes them (the window then counts as just written). */
  drain(): number {
    const held = this.held;
    if (held === 0) return 0;
    this.held = 0;
    this.lastAt = this.now();
    return held;
  }
}

/** At most one line per cause per `intervalMs`; counts in between are summed into the next line. */
export class RateLimitedLog {
  private readonly causes = new Map<string, LogWindow>();

  constructor(
    private readonly logger: WarnLogger,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Record `count` occurrences of `cause`; logs now if this cause has been quiet for the interval. */
  report(cause: string, count: number, message: string, fields: Record<string, unknown> = {}): void {
    if (count <= 0) return;
    let w = this.causes.get(cause);
    if (!w) {
      w = new LogWindow(this.intervalMs, this.now);
      this.causes.set(cause, w);
    }
    const held = w.take(count);
    if (held !== null) this.logger.warn({ ...fields, cause, count: held + count, total: w.total }, message);
  }

  /** Logs whatever is still pending (call on shutdown so the last drops are not left unsaid). */
  flush(message = 'dropped (final count)'): void {
    for (const [cause, w] of this.causes) {
      const held = w.drain();
      if (held > 0) this.logger.warn({ cause, count: held, total: w.total }, message);
    }
  }
}
