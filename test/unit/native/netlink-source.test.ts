/**
 * NetlinkSource's bookkeeping against a fake kernel and a fake socket (no root needed): it undoes
 * exactly its own changes, leaves alone what others changed, rolls back a failed start, takes over
 * only from a dead daemon, and its iterator delivers, bounds and ends as documented.
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
    return { received: 0, bytes: 0, batches: 0, delivered: 0, queueDrops: 0, enobufs: 0, truncated: 0, badSender: 0, ignored: 0, queued: 0, queueWaits: 0, summarized: 0, summarizedRecords: 0, triagePassed: 0, triageUnsure: 0, triageExpired: 0, procSnapshots: 0 };
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

const rule = (s: string) => Buffer.from(s);

describe('NetlinkSource start/stop', () => {
  it('undoes exactly its own changes: rules in reverse, status fields, pid, socket', async () => {
    const { kernel, source, socket } = setup();
    kernel.rules = [rule('theirs')];
    const report = await source.start({ mode: 'unicast', enable: true, backlogLimit: 8192, backlogWaitTime: 0, rules: [rule('a'), rule('b')] });
    expect(report.added).toBe(2);
    expect(report.changes.map((c) => c.field)).toEqual(['pid', 'backlogLimit', 'backlogWaitTime', 'enabled']);
    expect(kernel.status).toMatchObject({ enabled: 1, pid: OWN_PID, backlogLimit: 8192, backlogWaitTime: 0 });
    kernel.log = [];
    const stopped = await source.stop();
    expect(kernel.log).toEqual([
      'del b',
      'del a',
      'set {"enabled":0}',
      'set {"backlogWaitTime":15000}',
      'set {"backlogLimit":64}',
      'set {"pid":0}',
    ]);
    expect(stopped).toMatchObject({ removed: 2, missing: 0, releasedPid: true, errors: [] });
    expect(kernel.rules).toEqual([rule('theirs')]);
    expect(kernel.status).toMatchObject({ enabled: 0, pid: 0, backlogLimit: 64, backlogWaitTime: 15000 });
    expect(socket().closed).toBe(true);
    expect(await source.stop()).toMatchObject({ removed: 0 }); // twice is harmless
  });

  it('leaves alone fields and rules others changed after it, and a pid that is no longer ours', async () => {
    const { kernel, source } = setup();
    await source.start({ mode: 'unicast', enable: true, backlogLimit: 8192, rules: [rule('a'), rule('b')] });
    kernel.status.backlogLimit = 999; // someone else's change
    kernel.rules = kernel.rules.filter((r) => !r.equals(rule('a'))); // someone deleted one of ours
    kernel.status.pid = 7; // another daemon took over
    const stopped = await source.stop();
    expect(stopped.removed).toBe(1);
    expect(stopped.missing).toBe(1);
    expect(stopped.releasedPid).toBe(false);
    expect(stopped.leftAlone.map((c) => c.field)).toEqual(['backlogLimit']);
    expect(kernel.status).toMatchObject({ backlogLimit: 999, pid: 7, enabled: 0 });
  });

  it('does not claim rules that were already present', async () => {
    const { kernel, source } = setup();
    kernel.rules = [rule('a')];
    const report = await source.start({ mode: 'multicast', enable: false, rules: [rule('a'), rule('b')] });
    expect(report.added).toBe(1);
    expect(report.alreadyPresent).toEqual([rule('a')]);
    await source.stop();
    expect(kernel.rules).toEqual([rule('a')]);
  });

  it('rolls back everything when a rule is refused, then rethrows', async () => {
    const { kernel, source, socket } = setup();
    kernel.refuse.add('bad');
    await expect(source.start({ mode: 'unicast', enable: true, backlogLimit: 100, rules: [rule('a'), rule('bad')] })).rejects.toMatchObject({ code: 'EINVAL' });
    expect(kernel.rules).toEqual([]);
    expect(kernel.status).toMatchObject({ enabled: 0, pid: 0, backlogLimit: 64 });
    expect(socket().closed).toBe(true);
  });

  it('changes nothing when audit is immutable (enabled=2) but still reads', async () => {
    const { kernel, source } = setup();
    kernel.status.enabled = 2;
    const report = await source.start({ mode: 'multicast', enable: true, backlogLimit: 100, rules: [rule('a')] });
    expect(report.immutable).toBe(true);
    expect(report.changes).toEqual([]);
    expect(kernel.rules).toEqual([]);
    await source.stop();
    expect(kernel.log).toEqual([]);
  });

  it('keeps audit enabled on stop when asked to', async () => {
    const { kernel, source } = setup();
    await source.start({ mode: 'multicast', enable: true, rules: [], keepEnabled: true });
    const stopped = await source.stop();
    expect(stopped.leftAlone.map((c) => c.field)).toEqual(['enabled']);
    expect(kernel.status.enabled).toBe(1);
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
  it('delivers batches in order, to a waiting consumer or from the pending list, and ends after stop', async () => {
    const { source, socket } = setup();
    await source.start({ mode: 'multicast', enable: false, rules: [] });
    const push = socket().options.onBatch;
    push([{ type: 1300, text: 'one' }]);
    const seen: string[] = [];
    const consumer = (async () => {
      for await (const batch of source) seen.push(...batch.map((r) => r.text));
    })();
    await new Promise((r) => setImmediate(r));
    push([{ type: 1309, text: 'two' }, { type: 1320, text: 'three' }]);
    await source.stop();
    await consumer;
    expect(seen).toEqual(['one', 'two', 'three']);
  });

  it('drops and counts records beyond pendingLimit when nobody pulls', async () => {
    const { source, socket } = setup();
    await source.start({ mode: 'multicast', enable: false, rules: [], pendingLimit: 2 });
    const push = socket().options.onBatch;
    for (let i = 0; i < 5; i++) push([{ type: 1300, text: `a${i}` }, { type: 1320, text: `b${i}` }]);
    expect(source.counters()).toMatchObject({ pending: 2, sourceDrops: 6 });
    await source.stop();
  });

  it('rejects the waiting next() with a reader failure', async () => {
    const { source, socket } = setup();
    await source.start({ mode: 'multicast', enable: false, rules: [] });
    const it = source[Symbol.asyncIterator]();
    const next = it.next();
    socket().options.onError!(new AuditError('recvfrom: boom', 'recvfrom', 5));
    await expect(next).rejects.toMatchObject({ syscall: 'recvfrom', code: 'EIO' });
    await source.stop();
  });
});
