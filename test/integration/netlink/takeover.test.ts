/**
 * Against the real kernel: an audit daemon that registered and died leaves its pid in the kernel's
 * status; a unicast reader takes over (the kernel drops a registration whose netlink port is gone when
 * the next AUDIT_SET probes it) and reports whom it replaced. The reader never releases the pid (the
 * lifecycle does in the agent); here the test clears it with the native control.
 * Run under the lab lock.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import { createAuditControl, getStatus } from '../../../src/native/binding';
import { isProcessAlive } from '../../../src/native/process-alive';
import { NetlinkSource } from '../../../src/sources/netlink';
import {
  expectKernelAsFound,
  kernelBaseline,
  kernelSkipReason,
  pythonAvailable,
  reportSkip,
  snapshot,
} from './kernel-lab';

const skip = kernelSkipReason() ?? (pythonAvailable() ? null : 'python3 is needed for the short-lived daemon');
reportSkip('netlink takeover', skip);

// Registers itself as the audit daemon (AUDIT_SET, mask=PID), prints its pid once acknowledged, exits.
const SHORT_LIVED_DAEMON = `
import os, socket, struct
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)
s.bind((0, 0))
status = struct.pack("=11L", 4, 0, 0, os.getpid(), 0, 0, 0, 0, 0, 0, 0)
s.send(struct.pack("=LHHLL", 16 + len(status), 1001, 1 | 4, 1, 0) + status)
reply = s.recv(65536)
assert struct.unpack("=i", reply[16:20])[0] == 0, "AUDIT_SET refused"
print(os.getpid())
`;

describe.skipIf(skip !== null)('unicast takeover from a dead audit daemon, real kernel', () => {
  const kernel = kernelBaseline();

  it('replaces the registration of a daemon that exited, and still holds it after close until released', async () => {
    const deadPid = Number(execFileSync('python3', ['-c', SHORT_LIVED_DAEMON], { encoding: 'utf8' }).trim());
    expect(getStatus().pid).toBe(deadPid);
    expect(isProcessAlive(deadPid)).toBe(false);

    const source = new NetlinkSource();
    try {
      const report = await source.open({ mode: 'unicast' });
      expect(report.tookOverFrom).toBe(deadPid);
      expect(getStatus().pid).toBe(process.pid);
    } finally {
      await source.close();
      // Closing changed no status: the pid is still ours until someone releases it.
      expect(getStatus().pid).toBe(process.pid);
      createAuditControl().setStatus({ pid: 0 });
    }
    expect(snapshot().status.pid).toBe(0);
    expectKernelAsFound(kernel.before);
  });
});
