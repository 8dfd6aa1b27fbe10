/**
 * Against the real kernel: in multicast mode the kernel does not wait for readers, so a receive
 * buffer far too small for a burst makes it drop records for us. The reader must count each ENOBUFS
 * and keep reading: a probe exec after the burst still arrives. Run under the lab lock.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import type { RawRecord } from '../../../src/audit/event';
import { getStatus } from '../../../src/native/binding';
import { NetlinkSource } from '../../../src/sources/netlink';
import {
  execProbe,
  exitRuleText,
  expectKernelAsFound,
  kernelBaseline,
  kernelSkipReason,
  labLifecycle,
  probeEvent,
  probeToken,
  pythonAvailable,
  reportSkip,
  waitFor,
} from './kernel-lab';

/** 100k audited getppid() calls from a child process; resolves with its exit code. */
function burst(): Promise<number | null> {
  const child = spawn('python3', ['-c', 'import os\nfor _ in range(100000): os.getppid()'], { stdio: 'ignore' });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

const skip = kernelSkipReason() ?? (pythonAvailable() ? null : 'python3 is needed to generate the burst');
reportSkip('netlink enobufs', skip);

describe.skipIf(skip !== null)('multicast overflow, real kernel', () => {
  const kernel = kernelBaseline();

  it('counts ENOBUFS when the kernel overflows our receive buffer, and keeps reading', async () => {
    const source = new NetlinkSource();
    const records: RawRecord[] = [];
    const token = probeToken();
    let consumer: Promise<void> | null = null;
    const lifecycle = labLifecycle('multicast', [exitRuleText('getppid'), exitRuleText('execve')]);
    try {
      // The kernel rounds a 1-byte SO_RCVBUF up to its minimum (a few records' worth).
      await source.open({ mode: 'multicast', receiveBuffer: 1 });
      expect(lifecycle.install().failed).toEqual([]);
      consumer = (async () => {
        for await (const batch of source) {
          for (const r of batch) if (r.type === 1309 || r.type === 1320) records.push(r);
        }
      })();
      // Whether the kernel outruns the reader depends on scheduling: on an idle 2-core machine the
      // reader thread can keep pace with one burst. Bursts repeat (at most 5) until an overflow happens.
      // Two producers at once keep both cores busy, so the reader thread competes for CPU with them.
      for (let burstNo = 0; burstNo < 5 && source.counters().enobufs === 0; burstNo++) {
        const codes = await Promise.all([burst(), burst()]);
        expect(codes).toEqual([0, 0]);
        await waitFor(() => source.counters().queued === 0, 2000);
      }
      const afterBurst = source.counters();
      expect(afterBurst.enobufs).toBeGreaterThan(0);
      console.log(`[enobufs] received=${afterBurst.received} enobufs=${afterBurst.enobufs} queueDrops=${afterBurst.queueDrops}`);

      // The buffer stays tiny, so a probe exec's 6-7 records can themselves overflow it: the kernel may
      // keep as few as two. Reading goes on if records keep arriving and, over a few probes, an
      // EXECVE record naming one of them arrives whole.
      await waitFor(() => getStatus().backlog === 0, 15_000, 50);
      records.length = 0;
      const tokens: string[] = [];
      let arrived = false;
      for (let probe = 0; probe < 10 && !arrived; probe++) {
        const t = probe === 0 ? token : probeToken();
        tokens.push(t);
        execProbe(t);
        arrived = await waitFor(() => tokens.some((x) => probeEvent(records, x).length > 0), 1000);
      }
      expect(source.counters().received).toBeGreaterThan(afterBurst.received);
      expect(arrived, 'a probe exec after the overflow still arrives').toBe(true);
    } finally {
      const down = lifecycle.shutdown();
      await source.close();
      expect(down.errors).toEqual([]);
      await consumer;
    }
    expectKernelAsFound(kernel.before);
  });
});
