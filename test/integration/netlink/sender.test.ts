/**
 * Against the real kernel: audit records come only from the kernel (netlink port id 0). A local
 * process that sends datagrams straight to our reading socket's port id must not be able to inject
 * records; each such datagram is counted as badSender. Run under the lab lock.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import type { RawRecord } from '../../../src/audit/event';
import { createAuditSocket } from '../../../src/native/binding';
import { kernelSkipReason, pythonAvailable, reportSkip, waitFor } from './kernel-lab';

const skip = kernelSkipReason() ?? (pythonAvailable() ? null : 'python3 is needed to send spoofed datagrams');
reportSkip('netlink sender check', skip);

// Sends three well-formed "EXECVE" records from a userspace netlink socket to port argv[1].
const SPOOFER = `
import socket, struct, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)
s.bind((0, 0))
text = b'audit(1.000:1): argc=1 a0="credwatch-spoofed"'
for _ in range(3):
    s.sendto(struct.pack("=LHHLL", 16 + len(text), 1309, 0, 0, 0) + text, (int(sys.argv[1]), 0))
`;

// A burst of argv[2] spoofed records, one of them larger than a receive slot (64 KiB), sent before the
// reader can wake: they reach it as a few multi-datagram receives (native/datagram_receiver.h).
const BURST = `
import socket, struct, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
s.bind((0, 0))
n = int(sys.argv[2])
for i in range(n):
    text = b'audit(1.000:%d): argc=1 a0="credwatch-spoofed"' % i
    if i == n // 2:
        text += b'x' * 70000
    s.sendto(struct.pack("=LHHLL", 16 + len(text), 1309, 0, 0, 0) + text, (int(sys.argv[1]), 0))
`;

describe.skipIf(skip !== null)('reader sender check, real kernel', () => {
  it('drops and counts datagrams whose sender is not the kernel', async () => {
    const records: RawRecord[] = [];
    const socket = createAuditSocket({ mode: 'multicast', onBatch: (b) => records.push(...b) });
    socket.start();
    try {
      const port = socket.portId();
      expect(port).toBeGreaterThan(0);
      const sent = spawnSync('python3', ['-c', SPOOFER, String(port)], { encoding: 'utf8' });
      expect(sent.status, sent.stderr).toBe(0);
      expect(await waitFor(() => socket.getCounters().badSender === 3, 3000)).toBe(true);
      expect(records.some((r) => r.text.includes('credwatch-spoofed'))).toBe(false);
    } finally {
      socket.close();
    }
  });

  it('counts each datagram of a burst exactly once across multi-datagram receives, an oversized one included', async () => {
    const records: RawRecord[] = [];
    const socket = createAuditSocket({ mode: 'multicast', onBatch: (b) => records.push(...b) });
    socket.start();
    try {
      const n = 200;
      const sent = spawnSync('python3', ['-c', BURST, String(socket.portId()), String(n)], { encoding: 'utf8' });
      expect(sent.status, sent.stderr).toBe(0);
      expect(await waitFor(() => socket.getCounters().badSender >= n, 3000)).toBe(true);
      // Settle: a datagram counted twice would show up as more than n.
      await new Promise((r) => setTimeout(r, 100));
      expect(socket.getCounters().badSender).toBe(n);
      expect(records.some((r) => r.text.includes('credwatch-spoofed'))).toBe(false);
    } finally {
      socket.close();
    }
  });
});
