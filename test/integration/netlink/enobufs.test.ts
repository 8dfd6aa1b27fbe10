/**
 * Against the real kernel: in multicast mode the kernel does not wait for readers, so a receive
 * buffer far too small for a burst makes it drop records for us. The reader must count each ENOBUFS
 * and keep reading: a probe exec after the burst still arrives. Run under the lab lock.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { RawRecord } from '../../../src/audit/event';
import { NetlinkSource } from '../../../src/sources/netlink';
import {
  comparableStatus,
  execProbe,
  exitRule,
  kernelSkipReason,
  probeEvent,
  probeToken,
  pythonAvailable,
  reportSkip,
  restoreKernel,
  snapshot,
  waitFor,
  type KernelSnapshot,
} from './kernel-lab';

const skip = kernelSkipReason() ?? (pythonAvailable() ? null : 'python3 is needed to generate the burst');
reportSkip('netlink enobufs', skip);

describe.skipIf(skip !== null)('multicast overflow, real kernel', () => {
  let before: KernelSnapshot;

  beforeAll(() => {
    before = snapshot();
  });

  afterAll(() => {
    restoreKernel(before);
  });

  it('counts ENOBUFS when the kernel overflows our receive buffer, and keeps reading', async () => {
    const source = new NetlinkSource();
    const records: RawRecord[] = [];
    const token = probeToken();
    let consumer: Promise<void> | null = null;
    try {
      // The kernel rounds a 1-byte SO_RCVBUF up to its minimum (a few records' worth).
      await source.start({ mode: 'multicast', enable: true, receiveBuffer: 1, rules: [await exitRule('getppid'), await exitRule('execve')] });
      consumer = (async () => {
        for await (const batch of source) {
          for (const r of batch) if (r.type === 1309 || r.type === 1320) records.push(r);
        }
      })();
      // Whether the kernel outruns the reader depends on scheduling: on an idle 2-core machine the
      // reader thread can keep pace with one burst. Bursts repeat (at most 5) until an overflow happens.
      for (let burstNo = 0; burstNo < 5 && source.counters().enobufs === 0; burstNo++) {
        const burst = spawnSync('python3', ['-c', 'import os\nfor _ in range(100000): os.getppid()']);
        expect(burst.status).toBe(0);
        await waitFor(() => source.counters().queued === 0, 2000);
      }
      const afterBurst = source.counters();
      expect(afterBurst.enobufs).toBeGreaterThan(0);
      console.log(`[enobufs] received=${afterBurst.received} enobufs=${afterBurst.enobufs} queueDrops=${afterBurst.queueDrops}`);

      records.length = 0;
      execProbe(token);
      const arrived = await waitFor(() => probeEvent(records, token).length > 0, 5000);
      expect(arrived, 'a probe exec after the overflow still arrives').toBe(true);
    } finally {
      const report = await source.stop();
      expect(report.errors).toEqual([]);
      await consumer;
    }
    const after = snapshot();
    expect(comparableStatus(after.status)).toEqual(comparableStatus(before.status));
    expect(after.rules).toEqual(before.rules);
  });
});
