/**
 * The last `capacity` emitted serials of one node with their audit time, oldest forgotten first, for
 * the reassembler's late-record check. Re-emitting a serial moves it to the newest end.
 *
 * Why not a Map alone (delete + set, then `keys().next()` to find the oldest): V8's ordered hash
 * table leaves a hole per deletion until it rehashes, and an iterator starts by skipping every hole
 * from the front, so finding the oldest cost thousands of steps per event at the default 8192
 * (10% of `replay --events`). Here the order lives in a FIFO of serials; a serial re-emitted while
 * still remembered leaves a stale earlier copy in the FIFO, counted in `stale` and skipped on trim.
 */
export class RecentStamps {
  private readonly times = new Map<number, number>();
  private fifo: number[] = [];
  private head = 0;
  /** serial -> how many earlier copies of it are still in the FIFO (rare: late records, reuse). */
  private readonly stale = new Map<number, number>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.times.size;
  }

  get(serial: number): number | undefined {
    return this.times.get(serial);
  }

  /** Remembers `serial` as the newest; forgets the oldest beyond capacity. */
  add(serial: number, timeMs: number): void {
    if (this.times.has(serial)) this.stale.set(serial, (this.stale.get(serial) ?? 0) + 1);
    this.times.set(serial, timeMs);
    this.fifo.push(serial);
    if (this.times.size > this.capacity) this.forgetOldest();
  }

  private forgetOldest(): void {
    while (this.head < this.fifo.length) {
      const s = this.fifo[this.head++] as number;
      const n = this.stale.get(s);
      if (n === undefined) {
        this.times.delete(s);
        break;
      }
      if (n === 1) this.stale.delete(s);
      else this.stale.set(s, n - 1);
    }
    if (this.head > 4096 && this.head * 2 > this.fifo.length) {
      this.fifo = this.fifo.slice(this.head);
      this.head = 0;
    }
  }
}
