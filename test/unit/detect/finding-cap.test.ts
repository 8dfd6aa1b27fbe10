/**
 * The hard cap on a finding's encoded size (src/detect/finding-cap.ts): a finding over it is cut
 * deterministically (head + tail of long strings, first + last entries of long lists), marked with
 * `truncated: {fields, original_bytes}`, counted; its identity is never touched; it always fits.
 */
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../../src/model/finding';
import { DEFAULT_MAX_FINDING_BYTES, FindingCap, MIN_MAX_FINDING_BYTES } from '../../../src/detect/finding-cap';
import { makeFinding } from '../ship/support';

const bytes = (f: Finding): number => Buffer.byteLength(JSON.stringify(f));

/** Arguments of bytes that are not UTF-8 (surrogate escapes: six bytes each in JSON), like the review's case. */
function nonUtf8Arg(n: number, seed: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(0xdc80 + ((i * 31 + seed) % 128));
  return s;
}

function hugeFinding(): Finding {
  const argv = ['kubectl', 'exec', 'web-0', '--', 'cat', '/var/run/secrets/kubernetes.io/serviceaccount/token', ...Array.from({ length: 256 }, (_, i) => nonUtf8Arg(4096, i))];
  const base = makeFinding({ id: 'big-1' });
  return {
    ...base,
    process: { ...(base.process as NonNullable<Finding['process']>), exe: '/usr/local/bin/kubectl', argv, parents: [{ pid: 1, exe: '/usr/bin/bash', argv: ['bash', ...argv.slice(6)] }] },
    evidence: [{ event_id: '1.0:2', time: base.time, role: 'sa-path-in-argv', records: [{ type: 'SYSCALL', text: 'syscall=59' }, { type: 'EXECVE', text: `argc=262 ${'A0'.repeat(600_000)}` }] }],
  };
}

describe('FindingCap', () => {
  it('leaves a finding under the cap alone (the same object), and counts nothing', () => {
    const cap = new FindingCap();
    const f = makeFinding();
    expect(cap.apply(f)).toBe(f);
    const list = [f, makeFinding()];
    expect(cap.applyAll(list)).toBe(list);
    expect(cap.stats).toEqual({ cut: 0, cutBytes: 0 });
  });

  it('cuts the 12.8 MB-argv finding under 64 KiB, marked, identity kept, counted', () => {
    const cap = new FindingCap();
    const f = hugeFinding();
    const before = bytes(f);
    expect(before).toBeGreaterThan(8 * 1024 * 1024);
    const c = cap.apply(f);
    expect(bytes(c)).toBeLessThanOrEqual(DEFAULT_MAX_FINDING_BYTES);
    expect(c.truncated).toEqual({ fields: ['evidence.records.text', 'process.argv', 'process.parents.argv'], original_bytes: before });
    for (const k of ['id', 'rule', 'severity', 'score', 'time', 'host', 'source', 'indicators', 'covers', 'mitre'] as const) expect(c[k]).toEqual(f[k]);
    const argv = c.process?.argv as string[];
    expect(argv.slice(0, 6)).toEqual(f.process?.argv?.slice(0, 6));
    expect(argv).toContainEqual(expect.stringMatching(/^…\[\+\d+ args\]$/));
    // The last argument is kept (head + tail), cut with the byte count.
    expect(argv[argv.length - 1]).toMatch(/…\[\+\d+ bytes\]…/);
    expect(c.evidence[0]?.records.map((r) => r.type)).toEqual(['SYSCALL', 'EXECVE']);
    expect(cap.stats).toEqual({ cut: 1, cutBytes: before });
    // The original is not modified.
    expect(bytes(f)).toBe(before);
  });

  it('is deterministic: the same finding gives the same cut', () => {
    const f = hugeFinding();
    const a = JSON.stringify(new FindingCap().apply(f));
    const b = JSON.stringify(new FindingCap().apply(structuredClone(f)));
    expect(a === b).toBe(true);
  });

  it('takes the configured cap, and cuts less under a bigger one', () => {
    const small = new FindingCap(16 * 1024).apply(hugeFinding());
    const large = new FindingCap(256 * 1024).apply(hugeFinding());
    expect(bytes(small)).toBeLessThanOrEqual(16 * 1024);
    expect(bytes(large)).toBeLessThanOrEqual(256 * 1024);
    expect(bytes(large)).toBeGreaterThan(bytes(small));
    expect(() => new FindingCap(MIN_MAX_FINDING_BYTES - 1)).toThrow(RangeError);
  });

  it('never leaves a finding over the cap, whatever is big (thousands of evidence entries, kube groups, indicators)', () => {
    const base = makeFinding();
    const many: Finding = {
      ...base,
      indicators: Array.from({ length: 5000 }, (_, i) => `indicator-${i}`),
      evidence: Array.from({ length: 3000 }, (_, i) => ({ event_id: `1.0:${i}`, time: base.time, role: 'r'.repeat(500), records: [{ type: 'PATH', text: 'x'.repeat(2000) }] })),
      kube: { user: 'u', groups: Array.from({ length: 2000 }, (_, i) => `group-${i}`), impersonated_user: null, verb: 'get', resource: 'secrets', subresource: null, namespace: 'n', name: 'x', source_ips: [], user_agent: 'k'.repeat(100_000), response_code: 200, audit_id: 'a' },
    };
    const c = new FindingCap(MIN_MAX_FINDING_BYTES).apply(many);
    expect(bytes(c)).toBeLessThanOrEqual(MIN_MAX_FINDING_BYTES);
    expect(c.id).toBe(base.id);
    expect(c.truncated?.original_bytes).toBe(bytes(many));
    expect(c.truncated?.fields.length).toBeGreaterThan(0);
  });

  it('cutting an already cut finding keeps the first original size and adds to its fields', () => {
    const once = new FindingCap(64 * 1024).apply(hugeFinding());
    const twice = new FindingCap(MIN_MAX_FINDING_BYTES).apply(once);
    expect(bytes(twice)).toBeLessThanOrEqual(MIN_MAX_FINDING_BYTES);
    expect(twice.truncated?.original_bytes).toBe(once.truncated?.original_bytes);
    expect(twice.truncated?.fields).toEqual(expect.arrayContaining(once.truncated?.fields ?? []));
  });
});
