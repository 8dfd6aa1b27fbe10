import { describe, expect, it } from 'vitest';
import { RecentHits } from '../../../src/detect/recent-hits';

describe('RecentHits (repeat suppression memory)', () => {
  it('a hit inside the window is a repeat; at the window or after it, or earlier in time, it is new again', () => {
    const r = new RecentHits(16, 1000);
    expect(r.seen('a', 5000)).toBe(false);
    expect(r.seen('a', 5999)).toBe(true);
    expect(r.seen('a', 6000)).toBe(false); // remembered again from 6000
    expect(r.seen('a', 6500)).toBe(true);
    expect(r.seen('a', 4000)).toBe(false); // the clock went back: never a repeat
    expect(r.seen('b', 6500)).toBe(false);
  });

  it('expire() forgets keys whose window passed, oldest first, and keeps the others', () => {
    const r = new RecentHits(16, 1000);
    r.seen('old', 0);
    r.seen('young', 900);
    r.expire(1500);
    expect(r.size).toBe(1);
    expect(r.seen('young', 1500)).toBe(true);
    expect(r.seen('old', 1500)).toBe(false);
  });

  it('is bounded: past `max` keys the oldest is evicted, and a key set twice is kept by its later slot', () => {
    const r = new RecentHits(3, 10_000);
    r.seen('a', 0);
    r.seen('a', 20_000); // window passed: set again, the ring holds 'a' twice
    r.seen('b', 20_001);
    r.seen('c', 20_002); // evicts the first 'a' slot: 'a' stays (its Map time is the later one)
    expect(r.size).toBe(3);
    expect(r.seen('a', 20_003)).toBe(true);
    r.seen('d', 20_004); // evicts the second 'a' slot: 'a' is forgotten
    expect(r.size).toBe(3);
    expect(r.seen('a', 20_005)).toBe(false);
    expect(r.seen('c', 20_005)).toBe(true);
  });
});
