/**
 * Against the real kernel: when JavaScript stops consuming, the reader thread keeps draining the
 * socket (so the kernel neither loses records nor blocks audited processes on our account), drops
 * what does not fit in the bounded queue, counts every dropped record, and memory stays bounded.
 *
 * The JavaScript thread is blocked by spawnSync() for the whole burst: a Python child calls getppid()
 * (audited by a credwatch:test rule) many times and samples this process's VmRSS while it does.
 * Run under the lab lock.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import { NetlinkSource } from '../../../src/sources/netlink';
import {
  exitRuleText,
  expectKernelAsFound,
  kernelBaseline,
  kernelSkipReason,
  labLifecycle,
  pythonAvailable,
  reportSkip,
  waitFor,
} from './kernel-lab';

const skip = kernelSkipReason() ?? (pythonAvailable() ? null : 'python3 is needed to generate the burst');
reportSkip('netlink backpressure', skip);

const CALLS = 100_000;
const QUEUE_LIMIT = 4;
const BATCH_MAX = 64;

// getppid() in chunks; after each chunk, the parent's (our) VmRSS in kB; prints "peak_kb calls".
const BURST = `
import os
ppid = os.getppid()
peak = 0
def rss():
    with open('/proc/%d/status' % ppid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0
n = 0
while n < ${CALLS}:
    for _ in range(1000):
        os.getppid()
    n += 1000
    peak = max(peak, rss())
print(peak, n)
`;

function rssKb(): number {
  return Math.round(process.memoryUsage().rss / 1024);
}

describe.skipIf(skip !== null)('netlink reader under a stalled consumer, real kernel', () => {
  const kernel = kernelBaseline();

  it('counts queue drops while JavaScript is blocked, keeps the queue within queueLimit and RSS bounded', async () => {
    const source = new NetlinkSource();
    let consumed = 0;
    let consumer: Promise<void> | null = null;
    const lifecycle = labLifecycle('unicast', [exitRuleText('getppid')], { backlogLimit: 8192 });
    try {
      await source.open({ mode: 'unicast', queueLimit: QUEUE_LIMIT, batchMaxRecords: BATCH_MAX });
      expect(lifecycle.install().failed).toEqual([]);
      consumer = (async () => {
        for await (const batch of source) consumed += batch.length;
      })();
      global.gc?.();
      const baseline = rssKb();
      const burst = spawnSync('python3', ['-c', BURST], { encoding: 'utf8' }); // blocks this thread
      expect(burst.status, burst.stderr).toBe(0);
      const [peakKb] = burst.stdout.trim().split(/\s+/).map(Number);

      // Still blocked from JavaScript's point of view: nothing has been delivered since the burst.
      const during = source.counters();
      expect(during.queued).toBeLessThanOrEqual(QUEUE_LIMIT);
      expect(during.queueDrops).toBeGreaterThan(0);
      // Every getppid() makes at least a SYSCALL record; the reader saw them all (none lost to ENOBUFS).
      expect(during.received).toBeGreaterThanOrEqual(CALLS);
      expect(during.enobufs).toBe(0);
      // Unbounded buffering of ~3 records x 100k calls would cost well over 100 MB of JavaScript objects.
      expect(peakKb! - baseline, `peak ${peakKb} kB vs baseline ${baseline} kB`).toBeLessThan(32 * 1024);

      const drained = await waitFor(() => {
        const c = source.counters();
        return c.queued === 0 && c.pending === 0 && c.received === c.delivered + c.queueDrops;
      }, 5000);
      expect(drained).toBe(true);
      console.log(
        `[backpressure] received=${during.received} queueDrops=${during.queueDrops} queued<=${during.queued} ` +
          `baselineRss=${baseline}kB peakRss=${peakKb}kB`,
      );
    } finally {
      const down = lifecycle.shutdown();
      await source.close();
      expect(down.errors).toEqual([]);
      await consumer;
    }
    const c = source.counters();
    expect(c.received).toBe(c.delivered + c.queueDrops);
    expect(consumed).toBe(c.delivered - c.sourceDrops);

    expectKernelAsFound(kernel.before);
  });
});
