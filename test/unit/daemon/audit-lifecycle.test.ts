import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { Writable } from 'node:stream';
import {
  AuditLifecycle,
  AuditLifecycleError,
  SELF_RULE_KEY,
  resolveAuditRules,
  selfExclusionRule,
  type AuditLifecycleOptions,
} from '../../../src/daemon/audit-lifecycle';
import { encodeRule, ruleKey, rulePidField } from '../../../src/audit/rules';
import { FakeAuditKernel } from './fake-audit';

const SELF = 4242;
const AUDITD = 777;

function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

function lifecycle(kernel: FakeAuditKernel, over: Partial<AuditLifecycleOptions> = {}, alive: number[] = [SELF]) {
  const log = capture();
  const lc = new AuditLifecycle({
    control: kernel,
    mode: 'auto',
    rules: ['-a always,exit -F arch=b64 -S connect -k credwatch:connect', '-a always,exit -F arch=b64 -S execve -k credwatch:exec'],
    backlogLimit: 8192,
    logger: log.logger,
    selfPid: SELF,
    isProcessAlive: (pid) => alive.includes(pid),
    looksLikeCredwatch: () => false,
    ...over,
  });
  return { lc, log };
}

const keys = (k: FakeAuditKernel): string[] => k.rules.map((r) => ruleKey(r).join(','));

describe('mode choice', () => {
  it('auto takes unicast when the kernel audit pid is 0', () => {
    const k = new FakeAuditKernel();
    const plan = lifecycle(k).lc.decide();
    expect(plan.mode).toBe('unicast');
    expect(plan.holderPid).toBeNull();
    expect(k.setCalls).toEqual([]);
  });

  it('auto takes unicast when the audit pid belongs to a dead process', () => {
    const k = new FakeAuditKernel();
    k.status.pid = 31337;
    const plan = lifecycle(k).lc.decide();
    expect(plan.mode).toBe('unicast');
    expect(plan.reason).toContain('dead');
  });

  it('auto reads multicast beside a live audit daemon and leaves its rules alone', () => {
    const k = new FakeAuditKernel();
    k.status = { ...k.status, pid: AUDITD, enabled: 1, backlogLimit: 8192 };
    const auditdRule = encodeRule('-a always,exit -F arch=b64 -S openat -k auditd-rule');
    k.addRule(auditdRule);
    const auditdRules = k.listRules();
    const { lc } = lifecycle(k, {}, [SELF, AUDITD]);
    const plan = lc.decide();
    expect(plan).toMatchObject({ mode: 'multicast', holderPid: AUDITD });
    lc.install();
    expect(k.status.pid).toBe(AUDITD);
    lc.shutdown();
    expect(k.listRules()).toEqual(auditdRules);
    expect(k.status).toMatchObject({ pid: AUDITD, enabled: 1, backlogLimit: 8192 });
  });

  it('unicast is refused while a live daemon holds the socket', () => {
    const k = new FakeAuditKernel();
    k.status.pid = AUDITD;
    expect(() => lifecycle(k, { mode: 'unicast' }, [SELF, AUDITD]).lc.decide()).toThrow(AuditLifecycleError);
  });

  it('multicast when configured, even with no daemon', () => {
    expect(lifecycle(new FakeAuditKernel(), { mode: 'multicast' }).lc.decide().mode).toBe('multicast');
  });
});

describe('install and shutdown', () => {
  it('installs the self-exclusion first, then our rules, and enables audit', () => {
    const k = new FakeAuditKernel();
    const foreign = encodeRule('-a always,exit -F arch=b64 -S openat -k someone-else');
    k.addRule(foreign);
    const { lc } = lifecycle(k);
    lc.decide();
    const report = lc.install();
    expect(report).toMatchObject({ installed: 3, failed: [], staleRemoved: 0 });
    // The self-exclusion goes before every other rule (prepended), ours are appended.
    expect(keys(k)).toEqual([SELF_RULE_KEY, 'someone-else', 'credwatch:connect', 'credwatch:exec']);
    expect(rulePidField(k.rules[0] as Buffer)).toBe(SELF);
    expect(k.status).toMatchObject({ enabled: 1, backlogLimit: 8192 });
    expect(report.changes).toEqual([
      { field: 'backlogLimit', before: 64, after: 8192 },
      { field: 'enabled', before: 0, after: 1 },
    ]);
  });

  it('shutdown removes exactly our rules and restores the fields it changed', () => {
    const k = new FakeAuditKernel();
    const foreign = encodeRule('-a always,exit -F arch=b64 -S openat -k someone-else');
    k.addRule(foreign);
    const before = { status: k.getStatus(), rules: k.listRules() };
    const { lc } = lifecycle(k, { backlogWaitTime: 0 });
    lc.decide();
    k.status.pid = SELF; // what the reader socket does when it opens in unicast mode
    lc.install();
    expect(k.status.backlogWaitTime).toBe(0);
    const report = lc.shutdown();
    expect(report).toMatchObject({ removed: 4 - 1, missing: 0, releasedPid: true, errors: [] });
    expect(report.restored.map((c) => c.field).sort()).toEqual(['backlogLimit', 'backlogWaitTime', 'enabled']);
    expect(k.getStatus()).toEqual(before.status);
    expect(k.listRules()).toEqual(before.rules);
    expect(lc.shutdown()).toMatchObject({ removed: 0 }); // idempotent
  });

  it('a field someone else changed after us is left as they set it', () => {
    const k = new FakeAuditKernel();
    const { lc } = lifecycle(k);
    lc.decide();
    lc.install();
    k.status.backlogLimit = 320; // e.g. auditctl -b 320 while we ran
    const report = lc.shutdown();
    expect(report.leftAlone).toEqual([{ field: 'backlogLimit', before: 64, after: 8192 }]);
    expect(k.status.backlogLimit).toBe(320);
    expect(k.status.enabled).toBe(0);
  });

  it('a rule someone already removed counts as missing, not as an error', () => {
    const k = new FakeAuditKernel();
    const { lc } = lifecycle(k);
    lc.decide();
    lc.install();
    k.rules = k.rules.filter((r) => ruleKey(r)[0] !== 'credwatch:exec');
    expect(lc.shutdown()).toMatchObject({ removed: 2, missing: 1, errors: [] });
    expect(k.rules).toEqual([]);
  });

  it('a rule the kernel refuses is reported and the others still go in', () => {
    const k = new FakeAuditKernel();
    k.refuseKeys.add('credwatch:connect');
    const { lc, log } = lifecycle(k);
    lc.decide();
    const report = lc.install();
    expect(report.installed).toBe(2);
    expect(report.failed).toEqual([{ rule: '-a always,exit -F arch=b64 -S connect -k credwatch:connect', error: expect.stringContaining('EINVAL') as unknown }]);
    expect(log.lines.some((l) => l.msg === 'audit rule refused; running without it')).toBe(true);
    lc.shutdown();
    expect(k.rules).toEqual([]);
  });

  it('a rule without our key is refused before it reaches the kernel', () => {
    const k = new FakeAuditKernel();
    const { lc } = lifecycle(k, { rules: ['-a always,exit -F arch=b64 -S execve -k not-ours'] });
    lc.decide();
    const report = lc.install();
    expect(report.failed[0]?.error).toContain('no key starting with "credwatch"');
    expect(keys(k)).toEqual([SELF_RULE_KEY]);
  });

  it('if the self-exclusion cannot be installed nothing is left behind', () => {
    const k = new FakeAuditKernel();
    k.refuseKeys.add(SELF_RULE_KEY);
    const before = k.getStatus();
    const { lc } = lifecycle(k);
    lc.decide();
    expect(() => lc.install()).toThrow(/self-exclusion/);
    expect(k.rules).toEqual([]);
    expect(k.getStatus()).toEqual(before);
  });
});

describe('immutable audit (enabled=2), fake kernel only', () => {
  it('is detected, installs nothing, changes nothing, and says so', () => {
    const k = new FakeAuditKernel();
    k.status.enabled = 2;
    const existing = encodeRule('-a always,exit -S execve -k site-policy');
    k.status.enabled = 0;
    k.addRule(existing);
    k.status.enabled = 2;
    const existingRules = k.listRules();
    const { lc, log } = lifecycle(k);
    const plan = lc.decide();
    expect(plan.immutable).toBe(true);
    expect(lc.install()).toEqual({ installed: 0, failed: [], alreadyPresent: 0, staleRemoved: 0, changes: [] });
    expect(k.listRules()).toEqual(existingRules);
    expect(k.setCalls).toEqual([]);
    expect(log.lines.some((l) => l.level === 40 && String(l.msg).includes('immutable'))).toBe(true);
    expect(lc.shutdown()).toMatchObject({ removed: 0, restored: [], errors: [] });
    expect(k.status.enabled).toBe(2);
  });
});

describe('stale rules from a killed run', () => {
  it('removes leftover credwatch rules, keeps a foreign rule, and takes over a dead audit pid', () => {
    const k = new FakeAuditKernel();
    const deadAgent = 999;
    k.status = { ...k.status, pid: deadAgent, enabled: 1 };
    const foreign = encodeRule('-a always,exit -F arch=b64 -S openat -k ops-team');
    for (const r of [encodeRule(selfExclusionRule(deadAgent)), foreign, encodeRule('-a always,exit -F arch=b64 -S connect -k credwatch:connect')]) {
      k.addRule(r);
    }
    const foreignStored = k.listRules()[1];
    const { lc } = lifecycle(k);
    expect(lc.decide().mode).toBe('unicast');
    const report = lc.install();
    expect(report.staleRemoved).toBe(2);
    expect(k.setCalls[0]).toEqual({ pid: 0 });
    expect(keys(k)).toEqual([SELF_RULE_KEY, 'ops-team', 'credwatch:connect', 'credwatch:exec']);
    expect(rulePidField(k.rules[0] as Buffer)).toBe(SELF);
    lc.shutdown();
    expect(k.listRules()).toEqual([foreignStored]);
    expect(k.status.enabled).toBe(1); // it was 1 when we came: not ours to turn off
  });

  it('cleans up once: after the early cleanup (the agent does it before opening the reader), install reports it and does not scan again', () => {
    const k = new FakeAuditKernel();
    for (const r of [encodeRule(selfExclusionRule(999)), encodeRule('-a always,exit -F arch=b64 -S connect -k credwatch:connect')]) k.addRule(r);
    const { lc } = lifecycle(k);
    expect(lc.cleanupStale()).toBe(2);
    lc.decide();
    let lists = 0;
    const listRules = k.listRules.bind(k);
    k.listRules = () => {
      lists++;
      return listRules();
    };
    const report = lc.install();
    expect(report.staleRemoved).toBe(2);
    expect(lists).toBe(0);
  });

  it('restores what a killed predecessor found, from the state it saved, not what it left', () => {
    const k = new FakeAuditKernel();
    const state = new Map<string, string>();
    const store = { get: (key: string) => state.get(key), set: (key: string, v: string) => void state.set(key, v) };
    const killed = 999;
    const first = lifecycle(k, { selfPid: killed, state: store }, [killed]).lc;
    first.decide();
    first.install(); // ... and then SIGKILL: no shutdown
    expect(k.status).toMatchObject({ enabled: 1, backlogLimit: 8192 });
    expect(JSON.parse(state.get('audit_lifecycle') as string)).toMatchObject({ pid: killed });

    const { lc } = lifecycle(k, { state: store, backlogLimit: 4096 });
    lc.decide();
    const report = lc.install();
    expect(report.staleRemoved).toBe(3);
    expect(report.changes).toEqual([
      { field: 'backlogLimit', before: 64, after: 4096 },
      { field: 'enabled', before: 0, after: 1 },
    ]);
    lc.shutdown();
    expect(k.status).toMatchObject({ enabled: 0, backlogLimit: 64 });
    expect(k.rules).toEqual([]);
    expect(JSON.parse(state.get('audit_lifecycle') as string)).toEqual({ pid: SELF, changes: [] });
  });

  it('refuses to start when a live credwatch agent owns the rules', () => {
    const k = new FakeAuditKernel();
    k.addRule(encodeRule(selfExclusionRule(555)));
    const { lc } = lifecycle(k, { looksLikeCredwatch: (pid) => pid === 555 });
    lc.decide();
    expect(() => lc.install()).toThrow(/another credwatch agent \(pid 555\)/);
    expect(k.rules).toHaveLength(1);
  });
});

describe('kernel loss polling', () => {
  it('reports lost deltas (u32 wrap included) and logs drops at a bounded rate', () => {
    const k = new FakeAuditKernel();
    let t = 0;
    const { lc, log } = lifecycle(k, { now: () => t });
    const base = k.getStatus();
    expect(lc.observe({ ...base, lost: 10 }).lostDelta).toBe(0);
    expect(lc.observe({ ...base, lost: 15, backlog: 64 })).toMatchObject({ lostDelta: 5, lostCause: 'kernel_backlog_full' });
    t = 1000;
    expect(lc.observe({ ...base, lost: 20, backlog: 64 }).lostDelta).toBe(5);
    t = 20_000;
    expect(lc.observe({ ...base, lost: 4294967295 }).lostDelta).toBe(4294967275);
    expect(lc.observe({ ...base, lost: 3 }).lostDelta).toBe(4);
    const drops = log.lines.filter((l) => l.msg === 'kernel dropped audit records');
    // 5 logged at once; the next 5 within 10 s are held and added to the next line for that cause.
    expect(drops.map((d) => [d.cause, d.count])).toEqual([
      ['kernel_backlog_full', 5],
      ['kernel_lost', 4294967275],
    ]);
    lc.shutdown();
    const final = log.lines.filter((l) => l.msg === 'kernel dropped audit records (final count)');
    expect(final.map((d) => [d.cause, d.count, d.total])).toEqual([
      ['kernel_backlog_full', 5, 10],
      ['kernel_lost', 4, 4294967279],
    ]);
  });
});

describe('mode changes while running (auditd stopped and started beside us)', () => {
  it('multicast beside auditd advises unicast when auditd goes away, and nothing while it lives', () => {
    const k = new FakeAuditKernel();
    k.status = { ...k.status, pid: AUDITD, enabled: 1 };
    const alive = [SELF, AUDITD];
    const { lc } = lifecycle(k, {}, alive);
    lc.decide();
    lc.install();
    expect(lc.modeAdvice({ pid: AUDITD })).toBeNull();
    alive.splice(alive.indexOf(AUDITD), 1);
    expect(lc.modeAdvice({ pid: AUDITD })).toEqual({ mode: 'unicast', reason: `audit daemon pid ${AUDITD} died` });
    expect(lc.modeAdvice({ pid: 0 })?.mode).toBe('unicast');
    k.status.pid = SELF; // the new unicast reader registered
    lc.switchedMode('unicast', 'the audit daemon went away');
    expect(lc.plan?.mode).toBe('unicast');
    expect(lc.shutdown().releasedPid).toBe(true);
    expect(k.status.pid).toBe(0);
  });

  it('unicast notices auditd trying to start, yields to multicast and releases the pid', () => {
    const k = new FakeAuditKernel();
    const { lc } = lifecycle(k, {}, [SELF, AUDITD]);
    lc.decide();
    k.status.pid = SELF;
    lc.install();
    const refused = `audit(1732280000.123:77): op=set audit_pid=${AUDITD} old=${SELF} auid=0 ses=4294967295 subj=unconfined res=0`;
    expect(lc.daemonTakeoverAttempt(1305, refused)).toBe(AUDITD);
    expect(lc.daemonTakeoverAttempt(1305, refused.replace('res=0', 'res=1'))).toBeNull();
    expect(lc.daemonTakeoverAttempt(1300, refused)).toBeNull();
    lc.switchedMode('multicast', `pid ${AUDITD} wants the audit socket`);
    expect(k.status.pid).toBe(0);
    expect(lc.plan?.mode).toBe('multicast');
    // Rules survive a switch; shutdown still removes them all.
    expect(keys(k)).toEqual([SELF_RULE_KEY, 'credwatch:connect', 'credwatch:exec']);
    expect(lc.shutdown()).toMatchObject({ removed: 3, releasedPid: false });
  });

  it('gives no advice outside auto mode', () => {
    const k = new FakeAuditKernel();
    const { lc } = lifecycle(k, { mode: 'multicast' });
    lc.decide();
    expect(lc.modeAdvice({ pid: 0 })).toBeNull();
  });
});

describe('resolveAuditRules', () => {
  it('"default" asks the detection rules; a list is used as written, without duplicates', () => {
    const fromDetections = () => ['-a always,exit -F arch=b64 -S execve -k credwatch:exec'];
    expect(resolveAuditRules('default', fromDetections)).toEqual(fromDetections());
    expect(resolveAuditRules(['-w /etc/x -p r -k credwatch:a', ' -w /etc/x -p r -k credwatch:a '], fromDetections)).toEqual(['-w /etc/x -p r -k credwatch:a']);
  });
});
