import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, backoffDelay } from '../../../src/ship/backoff';

describe('backoffDelay (full jitter)', () => {
  it('draws from [0, base*2^(n-1)) on the exponential part', () => {
    expect(backoffDelay(DEFAULT_BACKOFF, 1, () => 0.999)).toBe(999);
    expect(backoffDelay(DEFAULT_BACKOFF, 3, () => 0.5)).toBe(2000);
    expect(backoffDelay(DEFAULT_BACKOFF, 3, () => 0)).toBe(0);
  });
  it('never exceeds the 5 minute cap', () => {
    for (let n = 1; n <= 30; n++) expect(backoffDelay(DEFAULT_BACKOFF, n, () => 0.9999)).toBeLessThanOrEqual(300_000);
  });
  it('waits the full cap once the fast retries are used up', () => {
    expect(backoffDelay(DEFAULT_BACKOFF, DEFAULT_BACKOFF.fastRetries + 1, () => 0)).toBe(300_000);
  });
  it('does not wait before the first attempt', () => {
    expect(backoffDelay(DEFAULT_BACKOFF, 0)).toBe(0);
  });
});
