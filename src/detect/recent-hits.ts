/**
 * Repeat suppression memory: hit key -> event time of the last hit that was not suppressed, at most
 * `max` keys, forgotten `windowMs` after that time.
 *
 * A Map for the lookups and a ring of (key, time) in insertion order for the forgetting. Expiry and
 * eviction pop from the ring's head, never by iterating the Map: a Map whose oldest keys are deleted one
 * at a time keeps their holes at its front until it rehashes, and a walk from the front (lru-cache's
 * entries() in the once-a-second sweep, or keys().next() per insert) scans them all. In a storm of new
 * processes (a new pid is a new key) that sweep walked all 8,192 keys every second.
 *
 * A key set again (its window passed) is in the ring twice; the older slot, when popped, leaves the key
 * alone because the Map holds a later time for it.
 */
export class RecentHits {
  private readonly times = new Map<string, number>();
  private readonly ringKeys: (string | undefined)[];
  private readonly ringTimes: Float64Array;
  private head = 0;
  private length = 0;

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
  ) {
    this.ringKeys = new Array<string | undefined>(max).fill(undefined);
    this.ringTimes = new Float64Array(max);
  }

  /**
   * True when `key` was hit less than the window before `timeMs` (a repeat: nothing is updated).
   * Otherwise the hit is remembered at `timeMs` and false returned. An earlier time than the one held
   * (clocks and logs go backwards) is never a repeat.
   */
  seen(key: string, timeMs: number): boolean {
    const last = this.times.get(key);
    if (last !== undefined && timeMs - last >= 0 && timeMs - last < this.windowMs) return true;
    if (this.length === this.max) this.popHead();
    this.times.set(key, timeMs);
    const slot = (this.head + this.length) % this.max;
    this.ringKeys[slot] = key;
    this.ringTimes[slot] = timeMs;
    this.length++;
    return false;
  }

  /**
   * Forgets keys whose window passed by `nowMs`, oldest first, stopping at the first one still inside it
   * (the ring is in arrival order; a key behind it that is already out is forgotten later or evicted,
   * and seen() never takes it for a repeat meanwhile).
   */
  expire(nowMs: number): void {
    while (this.length > 0 && nowMs - this.ringTimes[this.head]! > this.windowMs) this.popHead();
  }

  get size(): number {
    return this.times.size;
  }

  private popHead(): void {
    const key = this.ringKeys[this.head]!;
    if (this.times.get(key) === this.ringTimes[this.head]) this.times.delete(key);
    this.ringKeys[this.head] = undefined;
    this.head = (this.head + 1) % this.max;
    this.length--;
  }
}
