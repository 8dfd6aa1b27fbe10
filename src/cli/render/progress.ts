/**
 * The progress line of a long replay: drawn on stderr, only when stderr is a terminal and the input
 * is large (PROGRESS_MIN_BYTES), at most twice a second, and erased at the end so nothing of it is
 * left in the output. Used by `replay --events` and by `replay` (findings) alike.
 */
export const PROGRESS_MIN_BYTES = 64 * 1024 * 1024;

/** The size from which a replay draws progress; CREDWATCH_PROGRESS_MIN_BYTES lowers it (tests). */
export function progressMinBytes(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.CREDWATCH_PROGRESS_MIN_BYTES);
  return Number.isInteger(v) && v >= 0 ? v : PROGRESS_MIN_BYTES;
}

export class Progress {
  private last = 0;
  private shown = false;
  private readonly start = Date.now();
  constructor(
    private readonly total: number,
    private readonly enabled: boolean,
  ) {}

  update(bytes: number, events: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 500) return;
    this.last = now;
    const secs = Math.max(0.001, (now - this.start) / 1000);
    const pct = this.total > 0 ? `${Math.min(100, (100 * bytes) / this.total).toFixed(1)}%` : '?';
    process.stderr.write(`\r\x1b[Kreplay: ${mib(bytes)}/${mib(this.total)} MiB (${pct}), ${events} events, ${Math.round(events / secs)} events/s`);
    this.shown = true;
  }

  done(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
  }
}

function mib(n: number): string {
  return (n / (1024 * 1024)).toFixed(1);
}
