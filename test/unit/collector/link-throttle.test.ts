import { describe, expect, it } from 'vitest';
import { LinkThrottle } from '../../../src/collector/link-throttle';

describe('the fleet link throttle', () => {
  it('joins a jti at once until it is linked, then at most once per interval; held jtis come back from due()', () => {
    let now = 0;
    const t = new LinkThrottle({ everyMs: 1000, now: () => now });
    expect(t.take(['a', 'b'])).toEqual(['a', 'b']);
    expect(t.take(['a'])).toEqual(['a']); // no link yet: a read without requests must not delay the first link
    t.noteLinked(['a']);
    now = 100;
    expect(t.take(['a', 'b'])).toEqual(['b']);
    expect(t.take(['a'])).toEqual([]); // already held: once
    expect(t.stats.held).toBe(1);
    now = 900;
    expect(t.due()).toEqual([]);
    now = 1000;
    expect(t.due()).toEqual(['a']);
    expect(t.due()).toEqual([]);
  });

  it('never drops: past maxHeld a jti is joined at once (counted), and drain() hands over every held one', () => {
    let now = 0;
    const t = new LinkThrottle({ everyMs: 1000, maxHeld: 2, now: () => now });
    t.noteLinked(['a', 'b', 'c']);
    now = 10;
    expect(t.take(['a', 'b', 'c'])).toEqual(['c']);
    expect(t.stats).toEqual({ held: 2, overflow: 1 });
    expect(t.drain().sort()).toEqual(['a', 'b']);
    expect(t.due()).toEqual([]);
  });
});
