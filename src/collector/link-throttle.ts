/**
 * How often one replica re-joins a token's trail (token-join.ts). Until a jti has a link, every batch
 * touching it is joined at once: the linked finding must be seen when the first request meets the
 * read. After that the link only grows (one more request: a higher revision), so a jti linked less
 * than `everyMs` ago is held and joined by the next due() instead of once per batch: a storm of request findings for one stolen token
 * costs about one join and one stored revision a second per replica, like an agent's incidents. Held
 * jtis are never dropped: past `maxHeld` a jti is joined at once (counted), and drain() hands over
 * every held one at shutdown. Nothing here decides the link's content: the join reads the store.
 */
export interface LinkThrottleOptions {
  /** Default 1 s. */
  everyMs?: number;
  /** jtis held at most; beyond it they are joined at once. Default 10 000. */
  maxHeld?: number;
  /** jtis whose last join is remembered. Default 100 000 (oldest forgotten: its next join is at once). */
  maxTracked?: number;
  now?: () => number;
}

export interface LinkThrottleStats {
  /** Joins put off to the next due(). */
  held: number;
  /** Joins done at once because maxHeld jtis were already held. */
  overflow: number;
}

export class LinkThrottle {
  readonly stats: LinkThrottleStats = { held: 0, overflow: 0 };
  private readonly everyMs: number;
  private readonly maxHeld: number;
  private readonly maxTracked: number;
  private readonly now: () => number;
  /** jti -> time it was last linked. */
  private readonly last = new Map<string, number>();
  private readonly heldJtis = new Set<string>();

  constructor(opts: LinkThrottleOptions = {}) {
    this.everyMs = opts.everyMs ?? 1000;
    this.maxHeld = opts.maxHeld ?? 10_000;
    this.maxTracked = opts.maxTracked ?? 100_000;
    this.now = opts.now ?? Date.now;
  }

  /** Of the jtis a batch touched, those to join now; the rest are held for due(). */
  take(jtis: readonly string[]): string[] {
    const now = this.now();
    const out: string[] = [];
    for (const j of jtis) {
      const at = this.last.get(j);
      if (at !== undefined && now - at < this.everyMs) {
        if (this.heldJtis.has(j)) continue;
        if (this.heldJtis.size < this.maxHeld) {
          this.heldJtis.add(j);
          this.stats.held++;
          continue;
        }
        this.stats.overflow++;
      }
      this.heldJtis.delete(j);
      out.push(j);
    }
    return out;
  }

  /** These jtis' links were just stored: their next joins wait `everyMs`. */
  noteLinked(jtis: Iterable<string>): void {
    const now = this.now();
    for (const j of jtis) {
      this.last.delete(j);
      this.last.set(j, now);
    }
    while (this.last.size > this.maxTracked) this.last.delete(this.last.keys().next().value as string);
  }

  /** Held jtis whose interval has passed (call about every everyMs). */
  due(): string[] {
    const now = this.now();
    const out: string[] = [];
    for (const j of this.heldJtis) {
      if (now - (this.last.get(j) ?? 0) < this.everyMs) continue;
      this.heldJtis.delete(j);
      out.push(j);
    }
    return out;
  }

  /** Every held jti (shutdown). */
  drain(): string[] {
    const out = [...this.heldJtis];
    this.heldJtis.clear();
    return out;
  }
}
