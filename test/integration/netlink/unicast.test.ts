/**
 * Against the real kernel, as the audit daemon (unicast): the reader registers as the audit pid, the
 * lifecycle installs a rule with our key, a known program is exec'd with known arguments, its records
 * arrive through the addon, and after shutdown and close the kernel is exactly as before. Run under the lab lock (see kernel-lab.ts).
 */
import { describe, expect, it } from 'vitest';

import type { RawRecord } from '../../../src/audit/event';
import { getStatus } from '../../../src/native/binding';
import { NetlinkSource } from '../../../src/sources/netlink';
import {
  execProbe,
  exitRuleText,
  expectKernelAsFound,
  hex,
  kernelBaseline,
  kernelSkipReason,
  labLifecycle,
  probeEvent,
  probeToken,
  reportSkip,
  waitFor,
} from './kernel-lab';

const skip = kernelSkipReason();
reportSkip('netlink unicast', skip);

describe.skipIf(skip !== null)('netlink source, unicast, real kernel', () => {
  const kernel = kernelBaseline();

  it('receives SYSCALL, EXECVE, PATH, PROCTITLE and EOE of a probe exec, then leaves status and rules as found', async () => {
    const source = new NetlinkSource();
    const records: RawRecord[] = [];
    const token = probeToken();
    let consumer: Promise<void> | null = null;
    const lifecycle = labLifecycle('unicast', [exitRuleText('execve')], { backlogLimit: 8192 });
    try {
      const opened = await source.open({ mode: 'unicast' });
      expect(opened.mode).toBe('unicast');
      expect(getStatus().pid).toBe(process.pid);
      const installed = lifecycle.install();
      expect(installed.failed).toEqual([]);
      expect(installed.installed).toBe(2); // the self-exclusion and the probe rule
      expect(getStatus().enabled).toBe(1);
      expect(getStatus().backlogLimit).toBe(8192);
      consumer = (async () => {
        for await (const batch of source) records.push(...batch);
      })();
      execProbe(token);
      const complete = await waitFor(() => probeEvent(records, token).some((r) => r.type === 1320), 5000);
      expect(complete, 'probe event with EOE arrived').toBe(true);
    } finally {
      const down = lifecycle.shutdown();
      await source.close();
      expect(down.errors).toEqual([]);
      expect(down.releasedPid).toBe(true);
      await consumer;
    }

    const event = probeEvent(records, token);
    const types = event.map((r) => r.type);
    for (const t of [1300, 1309, 1302, 1327, 1320]) expect(types).toContain(t);
    expect(types[types.length - 1]).toBe(1320);
    const execve = event.find((r) => r.type === 1309)!;
    expect(execve.text).toMatch(/^audit\(\d+\.\d{3}:\d+\): argc=3 /);
    expect(execve.text).toContain(`a0="/bin/echo" a1="${token}" a2=${hex('two words')}`);
    expect(event.find((r) => r.type === 1300)!.text).toMatch(/ syscall=59 success=yes .* key="credwatch:test"/);
    expect(event.find((r) => r.type === 1327)!.text).toContain(`proctitle=${hex(`/bin/echo\0${token}\0two words`)}`);
    for (const r of records) expect(r.text.endsWith('\0')).toBe(false);

    const counters = source.counters();
    expect(counters.received).toBe(counters.delivered + counters.queueDrops);
    expect(counters.queueDrops).toBe(0);
    expect(counters.queued).toBe(0);

    expectKernelAsFound(kernel.before);
  });
});
