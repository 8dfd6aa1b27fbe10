/**
 * A fake kernel audit control plane with the semantics the lifecycle relies on: rules compared by
 * content with the prepend flag ignored (as the kernel stores them), EEXIST for a duplicate, ENOENT for
 * deleting a missing rule, EPERM for any change while enabled=2, and the prepend flag honoured.
 * The fake codec builds real-layout audit_rule_data buffers for the tiny subset the tests use.
 */
import type { AuditControl, AuditStatus, AuditStatusUpdate, RuleCodec } from '../../../src/daemon/audit-lifecycle';

function err(code: string): Error {
  return Object.assign(new Error(`fake audit: ${code}`), { code });
}

const HEADER = 1040;
const PREPEND = 0x10;

function withoutPrepend(b: Buffer): Buffer {
  const c = Buffer.from(b);
  c.writeUInt32LE(c.readUInt32LE(0) & ~PREPEND, 0);
  return c;
}

export class FakeAuditKernel implements AuditControl {
  status: AuditStatus = { enabled: 0, failure: 1, pid: 0, rate_limit: 0, backlog_limit: 64, lost: 0, backlog: 0, backlog_wait_time: 15000 };
  rules: Buffer[] = [];
  setCalls: AuditStatusUpdate[] = [];
  /** Rules (by key) the fake refuses with EINVAL, like a kernel missing a field. */
  refuseKeys = new Set<string>();

  getStatus(): AuditStatus {
    return { ...this.status };
  }

  setStatus(update: AuditStatusUpdate): void {
    this.setCalls.push(update);
    const locked = this.status.enabled === 2;
    for (const [k, v] of Object.entries(update) as [keyof AuditStatusUpdate, number][]) {
      if (k !== 'pid' && locked) throw err('EPERM');
      this.status[k] = v;
    }
  }

  addRule(payload: Buffer): void {
    if (this.status.enabled === 2) throw err('EPERM');
    const key = fakeCodec.key(payload);
    if (key && this.refuseKeys.has(key)) throw err('EINVAL');
    const stored = withoutPrepend(payload);
    if (this.rules.some((r) => r.equals(stored))) throw err('EEXIST');
    if (payload.readUInt32LE(0) & PREPEND) this.rules.unshift(stored);
    else this.rules.push(stored);
  }

  deleteRule(payload: Buffer): void {
    if (this.status.enabled === 2) throw err('EPERM');
    const i = this.rules.findIndex((r) => r.equals(payload));
    if (i < 0) throw err('ENOENT');
    this.rules.splice(i, 1);
  }

  listRules(): Buffer[] {
    return this.rules.map((r) => Buffer.from(r));
  }
}

/** Encodes "-a always|never,exit [-S name] [-F pid=N] [-k key]" and "-w path -k key" into the real layout. */
export const fakeCodec: RuleCodec = {
  encode(text: string): Buffer {
    const key = /-k (\S+)/.exec(text)?.[1] ?? null;
    const pid = /-F pid=(\d+)/.exec(text)?.[1];
    const syscallName = /-S (\S+)/.exec(text)?.[1];
    const syscall = syscallName === 'all' ? undefined : syscallName;
    const action = /never,/.test(text) ? 0 : 1;
    const keyBytes = key ? Buffer.from(key) : Buffer.alloc(0);
    const b = Buffer.alloc(HEADER + keyBytes.length);
    b.writeUInt32LE(4, 0); // AUDIT_FILTER_EXIT
    b.writeUInt32LE(action, 4);
    let n = 0;
    const field = (f: number, v: number): void => {
      b.writeUInt32LE(f, 12 + 256 + n * 4);
      b.writeUInt32LE(v, 12 + 512 + n * 4);
      b.writeUInt32LE(0x40000000, 12 + 768 + n * 4); // Audit_equal
      n++;
    };
    if (pid !== undefined) field(0, Number(pid));
    if (key) field(210, keyBytes.length);
    b.writeUInt32LE(n, 8);
    // Syscall mask: a hash of the name stands in for its number; no -S means all syscalls.
    for (let i = 0; i < 64; i++) b.writeUInt32LE(syscall ? 0 : 0xffffffff, 12 + i * 4);
    if (syscall) b.writeUInt32LE(1 << (syscall.length % 32), 12);
    b.writeUInt32LE(keyBytes.length, HEADER - 4);
    keyBytes.copy(b, HEADER);
    return b;
  },
  key(payload: Buffer): string | null {
    const n = payload.readUInt32LE(8);
    for (let i = 0; i < n; i++) {
      if (payload.readUInt32LE(12 + 256 + i * 4) === 210) {
        const len = payload.readUInt32LE(12 + 512 + i * 4);
        return payload.subarray(HEADER, HEADER + len).toString();
      }
    }
    return null;
  },
};
