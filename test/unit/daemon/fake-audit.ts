/**
 * A fake kernel audit control plane with the semantics the lifecycle relies on: rules stored in the
 * kernel's form (prepend flag cleared, syscall-class marker bits cleared) and compared by content,
 * EEXIST for a duplicate, ENOENT for deleting a missing rule, EPERM for any change but the pid while
 * enabled=2, and the prepend flag honoured. Rule payloads are real ones from src/audit/rules/wire.ts.
 */
import { ruleKey, toKernelForm } from '../../../src/audit/rules';
import type { AuditControl, AuditStatus, AuditStatusChange } from '../../../src/daemon/audit-lifecycle';

function err(code: string): Error {
  return Object.assign(new Error(`fake audit: ${code}`), { code });
}

const PREPEND = 0x10;

function stored(b: Buffer): Buffer {
  const c = toKernelForm(b);
  c.writeUInt32LE((c.readUInt32LE(0) & ~PREPEND) >>> 0, 0);
  return c;
}

export class FakeAuditKernel implements AuditControl {
  status: AuditStatus = {
    mask: 0,
    enabled: 0,
    failure: 1,
    pid: 0,
    rateLimit: 0,
    backlogLimit: 64,
    lost: 0,
    backlog: 0,
    featureBitmap: 127,
    backlogWaitTime: 15000,
    backlogWaitTimeActual: 0,
  };
  rules: Buffer[] = [];
  setCalls: AuditStatusChange[] = [];
  /** Rules (by key) the fake refuses with EINVAL, like a kernel missing a field. */
  refuseKeys = new Set<string>();

  getStatus(): AuditStatus {
    return { ...this.status };
  }

  setStatus(update: AuditStatusChange): void {
    this.setCalls.push(update);
    const locked = this.status.enabled === 2;
    for (const [k, v] of Object.entries(update) as [keyof AuditStatusChange, number][]) {
      if (k !== 'pid' && locked) throw err('EPERM');
      this.status[k] = v;
    }
  }

  addRule(payload: Buffer): void {
    if (this.status.enabled === 2) throw err('EPERM');
    if (ruleKey(payload).some((k) => this.refuseKeys.has(k))) throw err('EINVAL');
    const s = stored(payload);
    if (this.rules.some((r) => r.equals(s))) throw err('EEXIST');
    if (payload.readUInt32LE(0) & PREPEND) this.rules.unshift(s);
    else this.rules.push(s);
  }

  deleteRule(payload: Buffer): void {
    if (this.status.enabled === 2) throw err('EPERM');
    const s = stored(payload);
    const i = this.rules.findIndex((r) => r.equals(s));
    if (i < 0) throw err('ENOENT');
    this.rules.splice(i, 1);
  }

  listRules(): Buffer[] {
    return this.rules.map((r) => Buffer.from(r));
  }
}
