/**
 * Against the real kernel, beside Debian's auditd holding the audit pid: a unicast reader is refused
 * with EEXIST, and a multicast reader (rules from the lifecycle) sees the same probe exec auditd sees. Run under the lab lock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { RawRecord } from '../../../src/audit/event';
import { AuditError } from '../../../src/native/errors';
import { NetlinkSource } from '../../../src/sources/netlink';
import { auditdAvailable, startAuditd, type RunningAuditd } from './auditd-lab';
import {
  execProbe,
  exitRuleText,
  expectKernelAsFound,
  hex,
  kernelSkipReason,
  labLifecycle,
  probeEvent,
  probeToken,
  reportSkip,
  restoreKernel,
  snapshot,
  waitFor,
  type KernelSnapshot,
} from './kernel-lab';

const skip = kernelSkipReason() ?? (auditdAvailable() ? null : 'auditd is not installed (apt-get install auditd)');
reportSkip('netlink multicast', skip);

describe.skipIf(skip !== null)('netlink source, multicast beside auditd, real kernel', () => {
  let before: KernelSnapshot;
  let auditd: RunningAuditd | null = null;

  beforeAll(async () => {
    before = snapshot();
    auditd = await startAuditd();
  });

  afterAll(async () => {
    await auditd?.stop();
    restoreKernel(before);
  });

  it('refuses a unicast reader with EEXIST naming the live daemon, changing nothing', async () => {
    const source = new NetlinkSource();
    const err = await source.open({ mode: 'unicast' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuditError);
    expect((err as AuditError).code).toBe('EEXIST');
    expect((err as AuditError).syscall).toBe('AUDIT_SET');
    expect((err as AuditError).message).toContain(`live process ${auditd!.pid} (auditd)`);
    expect(snapshot().rules).toEqual(before.rules);
    expect(snapshot().status.pid).toBe(auditd!.pid);
  });

  it('sees the probe exec that auditd also receives, then leaves everything as found', async () => {
    const source = new NetlinkSource();
    const records: RawRecord[] = [];
    const token = probeToken();
    let consumer: Promise<void> | null = null;
    const lifecycle = labLifecycle('multicast', [exitRuleText('execve')]);
    try {
      await source.open({ mode: 'multicast' });
      const installed = lifecycle.install();
      expect(installed.failed).toEqual([]);
      expect(installed.installed).toBe(2); // the self-exclusion and the probe rule
      expect(snapshot().status.pid).toBe(auditd!.pid);
      consumer = (async () => {
        for await (const batch of source) records.push(...batch);
      })();
      execProbe(token);
      const complete = await waitFor(() => probeEvent(records, token).some((r) => r.type === 1320), 5000);
      expect(complete, 'probe event with EOE arrived over multicast').toBe(true);
      const auditdSaw = await waitFor(() => auditd!.output().includes(`a1="${token}"`), 5000);
      expect(auditdSaw, 'auditd received the same exec').toBe(true);
    } finally {
      const down = lifecycle.shutdown();
      await source.close();
      expect(down.errors).toEqual([]);
      expect(down.releasedPid).toBe(false);
      await consumer;
    }
    const types = probeEvent(records, token).map((r) => r.type);
    for (const t of [1300, 1309, 1302, 1327, 1320]) expect(types).toContain(t);
    expect(probeEvent(records, token).find((r) => r.type === 1309)!.text).toContain(`a1="${token}" a2=${hex('two words')}`);
    expect(snapshot().status.pid).toBe(auditd!.pid);

    await auditd!.stop();
    auditd = null;
    expectKernelAsFound(before);
  });
});
