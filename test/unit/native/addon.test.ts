/**
 * The native addon itself, without touching the kernel's audit state (no root needed): argument checks
 * on the C++ side, the record-text decoder, socket state errors, and sd_notify to real unix sockets.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { AuditError } from '../../../src/native/errors';
import { sdNotify } from '../../../src/native/binding';
import { tryLoadNative } from '../../helpers/native';
import type { NativeAuditSocketOptions } from '../../../src/native/types';

const { native, reason } = tryLoadNative();
if (reason) console.warn(`[skip] native addon: ${reason}`);
const hasPython = spawnSync('python3', ['-c', 'pass']).status === 0;
if (!hasPython) console.warn('[skip] sdNotify round trip: python3 is needed to receive the datagram');

describe.skipIf(native === null)('native addon', () => {
  it('decodes ASCII as is and invalid UTF-8 bytes as lone surrogates (surrogateescape)', () => {
    const n = native!;
    expect(n.decodeRecordText(Buffer.from('audit(1.2:3): a0="x"'))).toBe('audit(1.2:3): a0="x"');
    expect(n.decodeRecordText(Buffer.from('caf\u00e9 \u{1F600}', 'utf8'))).toBe('caf\u00e9 \u{1F600}');
    expect(n.decodeRecordText(Buffer.from([0x61, 0xff, 0x62]))).toBe('a\udcffb');
    // overlong "/" (C0 AF), an encoded surrogate (ED A0 80), a truncated sequence at the end (E2 82)
    expect(n.decodeRecordText(Buffer.from([0xc0, 0xaf]))).toBe('\udcc0\udcaf');
    expect(n.decodeRecordText(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\udced\udca0\udc80');
    expect(n.decodeRecordText(Buffer.from([0x41, 0xe2, 0x82]))).toBe('A\udce2\udc82');
    expect(n.decodeRecordText(Buffer.alloc(0))).toBe('');
  });

  it('checks constructor options again in C++', () => {
    const n = native!;
    const ok: NativeAuditSocketOptions = { mode: 'unicast', onBatch: () => undefined };
    expect(() => new n.AuditSocket({ ...ok, mode: 'broadcast' as 'unicast' })).toThrow(/mode must be/);
    expect(() => new n.AuditSocket({ ...ok, queueLimit: 0 })).toThrow(/queueLimit/);
    expect(() => new n.AuditSocket({ ...ok, batchMaxRecords: 1.5 })).toThrow(/batchMaxRecords/);
    expect(() => new n.AuditSocket({ ...ok, onBatch: 1 as unknown as () => void })).toThrow(/onBatch/);
    expect(() => new n.AuditSocket(undefined as unknown as NativeAuditSocketOptions)).toThrow(/options/);
  });

  it('refuses enabled=2 and failure=2 in C++ too, before any request is sent', () => {
    const n = native!;
    expect(() => n.setStatus({ enabled: 2 as 0 })).toThrow(/enabled must be 0 or 1/);
    expect(() => n.setStatus({ failure: 2 as 0 })).toThrow(/failure must be 0 or 1/);
    expect(() => n.addRule(Buffer.alloc(8))).toThrow(/shorter than struct audit_rule_data/);
  });

  it('closes an unstarted socket twice without error and refuses to start it afterwards', () => {
    const n = native!;
    const s = new n.AuditSocket({ mode: 'multicast', onBatch: () => undefined });
    s.close();
    s.close();
    expect(() => s.start()).toThrow(/closed/);
    expect(s.getCounters()).toMatchObject({ received: 0, queued: 0, queueDrops: 0 });
  });

  it('throws AuditError with errno and code for a bad notify socket', () => {
    try {
      sdNotify('READY=1', '/nonexistent/credwatch-notify.sock');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AuditError);
      expect((err as AuditError).syscall).toBe('sendto');
      expect((err as AuditError).code).toBe('ENOENT');
    }
    expect(() => sdNotify('READY=1', 'relative.sock')).toThrow(AuditError);
  });

  it.skipIf(!hasPython)('sends sd_notify datagrams to a path and to an abstract socket', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'credwatch-notify-'));
    const file = path.join(dir, 'notify.sock');
    const abstract = `@credwatch-test-${process.pid}-${Date.now()}`;
    const receiver = spawn('python3', ['-c', `
import socket, sys
a = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); a.bind(sys.argv[1])
b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); b.bind("\\0" + sys.argv[2][1:])
print("ready", flush=True)
print(a.recv(4096).decode(), flush=True)
print(b.recv(4096).decode(), flush=True)
`, file, abstract]);
    let out = '';
    receiver.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await new Promise<void>((resolve) => receiver.stdout.on('data', () => out.includes('ready') && resolve()));
      expect(sdNotify('READY=1\nSTATUS=reading', file)).toBe(true);
      expect(sdNotify('STOPPING=1', abstract)).toBe(true);
      await new Promise((resolve) => receiver.once('exit', resolve));
      expect(out).toBe('ready\nREADY=1\nSTATUS=reading\nSTOPPING=1\n');
    } finally {
      receiver.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
