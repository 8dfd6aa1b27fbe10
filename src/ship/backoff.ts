/**
 * Exponential backoff with full jitter (delay drawn uniformly from [0, min(cap, base * 2^n))), so that
 * many agents that lost the same receiver do not come back in lock-step. After `fastRetries` consecutive
 * failures every further wait is the cap: a receiver that is down for hours costs one attempt per cap,
 * and nothing is dropped because the findings stay in the outbox.
 */
export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
  /** Consecutive failures retried on the exponential curve before waiting the cap each time. */
  fastRetries: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1000, capMs: 5 * 60_000, fastRetries: 8 };

/** Delay before attempt number `failures` (1 = first retry). `random` is a seam for tests. */
export function backoffDelay(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  if (failures <= 0) return 0;
  if (failures > policy.fastRetries) return policy.capMs;
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** (failures - 1));
  return Math.floor(random() * ceiling);
}
