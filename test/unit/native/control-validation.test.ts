/**
 * Arguments are checked in TypeScript before anything crosses into C++ (no root needed: a fake
 * binding records every call that would have reached the kernel).
 */
import { describe, expect, it } from 'vitest';

import { AUDIT_RULE_DATA_HEADER_SIZE, createAuditControl } from '../../../src/native/binding';
import type { AuditStatusChange, NativeBinding } from '../../../src/native/types';

function fakeNative(): { native: NativeBinding; calls: string[] } {
  const calls: string[] = [];
  const native = {
    setStatus: (c: AuditStatusChange) => calls.push(`setStatus ${JSON.stringify(c)}`),
    addRule: () => calls.push('addRule'),
    deleteRule: () => calls.push('deleteRule'),
    sdNotify: (p: string, s: string) => calls.push(`sdNotify ${p} ${s}`),
  } as unknown as NativeBinding;
  return { native, calls };
}

describe('setStatus validation', () => {
  it('refuses enabled=2 (immutable) without calling native', () => {
    const { native, calls } = fakeNative();
    const control = createAuditControl(() => native);
    expect(() => control.setStatus({ enabled: 2 as 0 })).toThrow(/enabled must be 0 or 1/);
    expect(calls).toEqual([]);
  });

  it('refuses failure=2 (panic) without calling native', () => {
    const { native, calls } = fakeNative();
    const control = createAuditControl(() => native);
    expect(() => control.setStatus({ failure: 2 as 0 })).toThrow(/failure must be 0 or 1/);
    expect(() => control.setStatus({ backlogLimit: 128, failure: 2 as 0 })).toThrow(RangeError);
    expect(calls).toEqual([]);
  });

  it('refuses unknown fields, negative, fractional and too large values', () => {
    const { native, calls } = fakeNative();
    const control = createAuditControl(() => native);
    expect(() => control.setStatus({ lost: 0 } as unknown as AuditStatusChange)).toThrow(/unknown field "lost"/);
    expect(() => control.setStatus({ backlogLimit: -1 })).toThrow(RangeError);
    expect(() => control.setStatus({ backlogLimit: 1.5 })).toThrow(RangeError);
    expect(() => control.setStatus({ pid: 2 ** 32 })).toThrow(RangeError);
    expect(() => control.setStatus({ pid: '1' as unknown as number })).toThrow(RangeError);
    expect(() => control.setStatus(null as unknown as AuditStatusChange)).toThrow(TypeError);
    expect(calls).toEqual([]);
  });

  it('passes valid changes through, dropping undefined fields', () => {
    const { native, calls } = fakeNative();
    const control = createAuditControl(() => native);
    control.setStatus({ enabled: 1, backlogLimit: 8192, pid: undefined });
    expect(calls).toEqual(['setStatus {"enabled":1,"backlogLimit":8192}']);
  });
});

describe('rule payload validation', () => {
  it('refuses a non-Buffer, a payload shorter than audit_rule_data, and one whose length disagrees with buflen', () => {
    const { native, calls } = fakeNative();
    const control = createAuditControl(() => native);
    expect(() => control.addRule('x' as unknown as Buffer)).toThrow(TypeError);
    expect(() => control.addRule(Buffer.alloc(AUDIT_RULE_DATA_HEADER_SIZE - 1))).toThrow(/shorter than struct audit_rule_data/);
    expect(() => control.deleteRule(Buffer.alloc(10))).toThrow(RangeError);
    const trailing = Buffer.alloc(AUDIT_RULE_DATA_HEADER_SIZE + 8); // buflen 0, 8 stray bytes
    expect(() => control.addRule(trailing)).toThrow(/buflen says 1040/);
    control.addRule(Buffer.alloc(AUDIT_RULE_DATA_HEADER_SIZE));
    const withKey = Buffer.alloc(AUDIT_RULE_DATA_HEADER_SIZE + 3);
    withKey.writeUInt32LE(3, AUDIT_RULE_DATA_HEADER_SIZE - 4);
    control.deleteRule(withKey);
    expect(calls).toEqual(['addRule', 'deleteRule']);
  });
});

describe('sdNotify', () => {
  it('returns false without a socket and never calls native', () => {
    const { native, calls } = fakeNative();
    const control = createAuditControl(() => native);
    expect(control.sdNotify('READY=1', '')).toBe(false);
    const saved = process.env.NOTIFY_SOCKET;
    delete process.env.NOTIFY_SOCKET;
    try {
      expect(control.sdNotify('READY=1')).toBe(false);
    } finally {
      if (saved !== undefined) process.env.NOTIFY_SOCKET = saved;
    }
    expect(calls).toEqual([]);
  });

  it('sends to the given socket, defaulting to $NOTIFY_SOCKET', () => {
    const { native, calls } = fakeNative();
    const control = createAuditControl(() => native);
    expect(control.sdNotify('READY=1', '@x')).toBe(true);
    const saved = process.env.NOTIFY_SOCKET;
    process.env.NOTIFY_SOCKET = '/run/x.sock';
    try {
      expect(control.sdNotify('STOPPING=1')).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.NOTIFY_SOCKET;
      else process.env.NOTIFY_SOCKET = saved;
    }
    expect(calls).toEqual(['sdNotify @x READY=1', 'sdNotify /run/x.sock STOPPING=1']);
  });
});
