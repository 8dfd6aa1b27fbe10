/**
 * NetlinkSource against a fake kernel and a fake socket (no root needed): a pure reader that changes
 * no kernel state but the unicast registration its socket makes, takes over only from a dead daemon,
 * and whose iterator delivers, bounds and ends as documented.
 */
import { describe, expect, it } from 'vitest';

import type { AuditControl } from '../../../src/native/binding';
import { AuditError } from '../../../src/native/errors';
import type { AuditSocketOptions, AuditStatus, AuditStatusChange, NativeAuditSocket } from '../../../src/native/types';
import { NetlinkSource, takeOverIfDead } from '../../../src/sources/netlink';

const OWN_PID = 4242;

function auditError(code: 'EEXIST' | 'ENOENT' | 'EPERM' | 'EINVAL'): AuditError {
  const errno = { EEXIST: 17, ENOENT: 2, EPERM: 1, EINVAL: 22 }[code];
  return new AuditError(`fake: ${code}`, 'AUDIT_X', errno);
}

class FakeKernel implements AuditControl {
  status: AuditStatus = {
    mask: 0, enabled: 0, failure: 1, pid: 0, rateLimit: 0, backlogLimit: 64, lost: 0, backlog: 0,
    featureBitmap: 127, backlogWaitTime: 15000, backlogWaitTimeActual: 0,
  };
  rules: Buffer[] = [];
  refuse = new Set<string>();
  log: string[] = [];

  getStatus(): AuditStatus {
    return { ...this.status };
  }
  setStatus(c: AuditStatusChange): void {
    this.log.push(`set ${JSON.stringify(c)}`);
    if (this.status.enabled === 2 && c.pid === undefined) throw auditError('EPERM');
    Object.assign(this.status, c);
  }
  addRule(rule: Buffer): void {
    if (this.refuse.has(rule.toString())) throw auditError('EINVAL');
    if (this.rules.some((r) => r.equals(rule))) throw auditError('EEXIST');
    this.log.push(`add ${rule.toString()}`);
    this.rules.push(rule);
  }
  deleteRule(rule: Buffer): void {
    const i = this.rules.findIndex((r) => r.equals(rule));
    if (i < 0) throw auditError('ENOENT');
    this.log.push(`del ${rule.toString()}`);
    this.rules.splice(i, 1);
  }
  listRules(): Buffer[] {
    return [...this.rules];
  }
  sdNotify(): boolean {
    return false;
  }
}

class FakeSocket implements NativeAuditSocket {
  started = false;
  closed = false;
  constructor(
    readonly options: AuditSocketOptions,
    private readonly kernel: FakeKernel,
    private readonly holderAlive: () => boolean,
  ) {}
  start(): void {
    if (this.options.mode === 'unicast') {
      if (this.kernel.status.pid !== 0 && this.holderAlive()) throw auditError('EEXIST');
      this.kernel.status.pid = OWN_PID;
    }
    this.started = true;
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    setImmediate(() => this.options.onClosed?.());
  }
  getCounters() {
    return { received: 0, bytes: 0, batches: 0, delivered: 0, queueDrops: 0, enobufs: 0, truncated: 0, badSender: 0, ignored: 0, queued: 0, queueWaits: 0, summarized: 0, summarizedRecords: 0, triagePassed: 0, triageUnsure: 0, triageExpired: 0, procSnapshots: 0, repeatNotes: 0, repeatTemplates: 0, repeatEvictions: 0, repeatSkipped: 0 };
  }
  setTriage(): void {}
  ref(): void {}
  unref(): void {}
  portId(): number {
    return 1;
  }
}

function setup(holderAlive = false) {
  const kernel = new FakeKernel();
  let socket: FakeSocket | null = null;
  const source = new NetlinkSource({
    control: kernel,
    openSocket: (o) => (socket = new FakeSocket(o, kernel, () => holderAlive)),
    isProcessAlive: () => holderAlive,
    ownPid: OWN_PID,
  });
  return { kernel, source, socket: () => socket! };
}

describe('NetlinkSource open/close (a pure reader)', () => {
  it('unicast: registers the reading socket as the audit pid and changes nothing else, open or closed', async () => {
    const { kernel, source, socket } = setup();
    kernel.rules.push(Buffer.from('theirs'));
    const before = kernel.getStatus();
    const report = await source.open({ mode: 'unicast' });
    expect(report).toEqual({ mode: 'unicast', tookOverFrom: null });
    expect(socket().started).toBe(true);
    expect(kernel.getStatus()).toEqual({ ...before, pid: OWN_PID });
    await source.close();
    expect(socket().closed).toBe(true);
    // Releasing the pid is the lifecycle's (src/daemon/audit-lifecycle.ts): the reader sends no status change.
    expect(kernel.log).toEqual([]);
    expect(kernel.rules.map(String)).toEqual(['theirs']);
  });

  it('multicast: opens beside a live daemon without touching the kernel', async () => {
    const { kernel, source } = setup(true);
    kernel.status.pid = 77;
    const before = kernel.getStatus();
    expect(await source.open({ mode: 'multicast' })).toEqual({ mode: 'multicast', tookOverFrom: null });
    await source.close();
    expect(kernel.getStatus()).toEqual(before);
    expect(kernel.log).toEqual([]);
  });

  it('unicast beside a live daemon fails, naming the holder, and leaves the kernel as it was', async () => {
    const { kernel, source, socket } = setup(true);
    kernel.status.pid = 77;
    await expect(source.open({ mode: 'unicast' })).rejects.toThrow(/held by live process 77/);
    expect(socket().started).toBe(false);
    expect(kernel.status.pid).toBe(77);
    expect(kernel.log).toEqual([]);
  });

  it('reports the dead daemon it took the pid over from', async () => {
    const { kernel, source } = setup(false);
    kernel.status.pid = 77;
    expect((await source.open({ mode: 'unicast' })).tookOverFrom).toBe(77);
    expect(kernel.status.pid).toBe(OWN_PID);
    await source.close();
  });

  it('opens once; close is idempotent', async () => {
    const { source } = setup();
    await source.open({ mode: 'multicast' });
    await expect(source.open({ mode: 'multicast' })).rejects.toThrow(/once/);
    await source.close();
    await source.close();
  });
});

describe('takeOverIfDead', () => {
  it('reports the dead holder the kernel let us replace', () => {
    const kernel = new FakeKernel();
    kernel.status.pid = 77;
    const result = takeOverIfDead(() => void (kernel.status.pid = OWN_PID), kernel, () => false, OWN_PID);
    expect(result.tookOverFrom).toBe(77);
  });

  it('retries once when the holder died between the attempts', () => {
    const kernel = new FakeKernel();
    kernel.status.pid = 77;
    let attempts = 0;
    const start = () => {
      attempts++;
      if (attempts === 1) throw auditError('EEXIST');
    };
    expect(takeOverIfDead(start, kernel, () => false, OWN_PID).tookOverFrom).toBe(77);
    expect(attempts).toBe(2);
  });

  it('refuses to displace a live holder, naming it', () => {
    const kernel = new FakeKernel();
    kernel.status.pid = 77;
    let attempts = 0;
    const start = () => {
      attempts++;
      throw auditError('EEXIST');
    };
    expect(() => takeOverIfDead(start, kernel, () => true, OWN_PID)).toThrow(/held by live process 77/);
    expect(attempts).toBe(1);
  });
});

describe('NetlinkSource iteration', () => {
  it('delivers batches in order, to a waiting consumer or from the pending list, and ends after close', async () => {
    const { source, socket } = setup();
    await source.open({ mode: 'multicast' });
    const push = socket().options.onBatch;
    push([{ type: 1300, text: 'one' }]);
    const seen: string[] = [];
    const consumer = (async () => {
      for await (const batch of source) seen.push(...batch.map((r) => r.text));
    })();
    await new Promise((r) => setImmediate(r));
    push([{ type: 1309, text: 'two' }, { type: 1320, text: 'three' }]);
    await source.close();
    await consumer;
    expect(seen).toEqual(['one', 'two', 'three']);
  });

  it('drops and counts records beyond pendingLimit when nobody pulls', async () => {
    const { source, socket } = setup();
    await source.open({ mode: 'multicast', pendingLimit: 2 });
    const push = socket().options.onBatch;
    for (let i = 0; i < 5; i++) push([{ type: 1300, text: `a${i}` }, { type: 1320, text: `b${i}` }]);
    expect(source.counters()).toMatchObject({ pending: 2, sourceDrops: 6 });
    await source.close();
  });

  it('rejects the waiting next() with a reader failure', async () => {
    const { source, socket } = setup();
    await source.open({ mode: 'multicast' });
    const it = source[Symbol.asyncIterator]();
    const next = it.next();
    socket().options.onError!(new AuditError('recvfrom: boom', 'recvfrom', 5));
    await expect(next).rejects.toMatchObject({ syscall: 'recvfrom', code: 'EIO' });
    await source.close();
  });
});
