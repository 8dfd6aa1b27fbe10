/**
 * io_uring filter-list rules (list 7) against the kernel's own read-back: Debian's auditctl 3.0.9
 * rejects `-a always,io_uring` ("bad keyword"), so there is no auditctl payload to compare with.
 * Each rule the agent installs by default is sent as we encode it, listed back, compared byte for
 * byte with what the kernel keeps (toKernelForm), printed back as the same text, and deleted.
 * Also what this kernel refuses on that list (`-F perm=`), so the default rules avoid it.
 *
 * Changes the kernel rule list: run under the lab lock
 *   flock /tmp/credwatch-lab.lock npx vitest run test/integration/rules/uring-rules.test.ts
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeRule, encodeRule, formatRule, parseRuleText, ruleKey, toKernelForm, uringWatchRule } from '../../../src/audit/rules';
import { createAuditControl } from '../../../src/native/binding';

function problem(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (CAP_AUDIT_CONTROL)';
  try {
    createAuditControl().getStatus();
  } catch (err) {
    return `audit addon unusable: ${(err as Error).message}`;
  }
  return undefined;
}
const skip = problem();
if (skip) console.warn(`[io_uring rules] skipped: ${skip}`);

const KEY = 'credwatch:uring-test';
const dir = mkdtempSync(join(tmpdir(), 'cw-uring-rules-'));
mkdirSync(join(dir, 'vol'));
writeFileSync(join(dir, 'cred'), 'x');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('io_uring rule encoding', () => {
  it('parses op names (not syscall names) and refuses -F arch', () => {
    const spec = parseRuleText(`-a always,io_uring -S openat,openat2,connect -F key=${KEY}`);
    expect(spec.list).toBe('io_uring');
    expect(spec.syscalls).toEqual([16, 18, 28]); // IORING_OP_CONNECT, _OPENAT, _OPENAT2
    expect(() => parseRuleText(`-a always,io_uring -F arch=b64 -S openat -F key=${KEY}`)).toThrow(/arch is not valid on the io_uring list/);
    expect(() => parseRuleText(`-a always,io_uring -S execve -F key=${KEY}`)).toThrow(/unknown/);
    expect(encodeRule(`-a always,io_uring -S connect -F key=${KEY}`).readUInt32LE(0)).toBe(7); // AUDIT_FILTER_URING_EXIT
  });
});

describe.skipIf(skip !== undefined)('io_uring rules: the kernel keeps exactly what we send', () => {
  const control = skip ? null : createAuditControl();
  const ours = (): Buffer[] => control!.listRules().filter((p) => ruleKey(p).includes(KEY));
  afterAll(() => {
    for (const p of control ? ours() : []) control!.deleteRule(p);
  });

  const defaults = [
    `-a always,io_uring -S connect -F key=${KEY}`,
    uringWatchRule(join(dir, 'vol'), KEY, true),
    uringWatchRule(join(dir, 'cred'), KEY, false),
  ];
  for (const line of defaults) {
    it(`round-trips: ${line.replace(dir, '<tmp>')}`, () => {
      const payload = encodeRule(line);
      control!.addRule(payload);
      const listed = ours();
      expect(listed).toHaveLength(1);
      expect(listed[0]!.toString('hex')).toBe(toKernelForm(payload).toString('hex'));
      expect(formatRule(decodeRule(listed[0]!))).toBe(line);
      control!.deleteRule(listed[0]!);
      expect(ours()).toHaveLength(0);
    });
  }

  it('this kernel refuses -F perm= on the io_uring list (why the default rules name ops instead)', () => {
    expect(() => control!.addRule(encodeRule(`-a always,io_uring -S openat -F perm=r -F key=${KEY}`))).toThrow(/Invalid argument|EINVAL/);
    expect(ours()).toHaveLength(0);
  });
});
