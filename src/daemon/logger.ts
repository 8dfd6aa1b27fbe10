/**
 * Structured logs: pino, JSON lines on stdout (journald stores them with the unit). Secrets that could
 * ride along in logged objects are redacted by key. RateLimitedLog keeps a flood of the same warning
 * (drops under load) from becoming a second flood: one line per cause per interval, with the count.
 */
import pino from 'pino';
import type { LOG_LEVELS } from './config-schema';

export type Logger = pino.Logger;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel = 'info', destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // "level":"warn", not 40: journalctl -o cat, grep and a log shipper read the name (agent and collector alike).
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: ['token', '*.token', 'password', '*.password', 'api_key', '*.api_key', 'headers.authorization', '*.headers.authorization'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

interface CauseState {
  lastLogAt: number;
  /** Counted since the last line for this cause. */
  pending: number;
  total: number;
}

/** At most one line per cause per `intervalMs`; counts in between are summed into the next line. */
export class RateLimitedLog {
  private readonly causes = new Map<string, CauseState>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Record `count` occurrences of `cause`; logs now if this cause has been quiet for the interval. */
  report(cause: string, count: number, message: string, fields: Record<string, unknown> = {}): void {
    if (count <= 0) return;
    const t = this.now();
    let s = this.causes.get(cause);
    if (!s) {
      s = { lastLogAt: -Infinity, pending: 0, total: 0 };
      this.causes.set(cause, s);
    }
    s.pending += count;
    s.total += count;
    if (t - s.lastLogAt >= this.intervalMs) this.emit(cause, s, message, fields, t);
  }

  /** Logs whatever is still pending (call on shutdown so the last drops are not left unsaid). */
  flush(message = 'dropped (final count)'): void {
    const t = this.now();
    for (const [cause, s] of this.causes) if (s.pending > 0) this.emit(cause, s, message, {}, t);
  }

  private emit(cause: string, s: CauseState, message: string, fields: Record<string, unknown>, t: number): void {
    this.logger.warn({ ...fields, cause, count: s.pending, total: s.total }, message);
    s.pending = 0;
    s.lastLogAt = t;
  }
}
