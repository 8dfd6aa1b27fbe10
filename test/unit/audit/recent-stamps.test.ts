import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RecentStamps } from '../../../src/audit/recent-stamps';

/** The behaviour RecentStamps replaces: a Map re-inserted on every add, trimmed from its front. */
class MapStamps {
  readonly m = new Map<number, number>();
  constructor(private readonly capacity: number) {}
  add(serial: number, t: number): void {
    this.m.delete(serial);
    this.m.set(serial, t);
    if (this.m.size > this.capacity) this.m.delete(this.m.keys().next().value as number);
  }
}

describe('RecentStamps', () => {
  it('forgets the oldest serial beyond capacity, and a re-added serial counts as newest', () => {
    const r = new RecentStamps(2);
    r.add(1, 10);
    r.add(2, 20);
    r.add(1, 11); // 1 is now newer than 2
    r.add(3, 30); // forgets 2, not 1
    expect(r.get(2)).toBeUndefined();
    expect(r.get(1)).toBe(11);
    expect(r.get(3)).toBe(30);
    expect(r.size).toBe(2);
  });

  it('remembers exactly what the re-inserting Map remembered, for any sequence of adds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 12 }), fc.nat(1000)), { maxLength: 300 }), (cap, adds) => {
        const fast = new RecentStamps(cap);
        const ref = new MapStamps(cap);
        for (const [s, t] of adds) {
          fast.add(s, t);
          ref.add(s, t);
          expect(fast.size).toBe(ref.m.size);
        }
        for (let s = 0; s <= 12; s++) expect(fast.get(s)).toBe(ref.m.get(s));
      }),
    );
  });

  it('stays exact past the FIFO compaction point', () => {
    const fast = new RecentStamps(100);
    const ref = new MapStamps(100);
    for (let i = 0; i < 20_000; i++) {
      const s = i % 7 === 0 ? i - 50 : i; // some re-adds of still-remembered serials
      fast.add(s, i);
      ref.add(s, i);
    }
    expect(fast.size).toBe(ref.m.size);
    for (const [s, t] of ref.m) expect(fast.get(s)).toBe(t);
  });
});
