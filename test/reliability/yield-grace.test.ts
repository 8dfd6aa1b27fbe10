/**
 * Found by the auditd coexistence test: after yielding the audit pid to a starting auditd (whose
 * first registration the kernel refused while we held the pid), the agent's next status poll saw
 * pid 0 ("the audit daemon went away") and took unicast back half a second later, before auditd was
 * restarted, so auditd was refused again, forever. The lifecycle now leaves a yielded pid free for
 * YIELD_GRACE_MS. Unit level, with the fake kernel and a fake clock.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AuditLifecycle, YIELD_GRACE_MS } from '../../src/daemon/audit-lifecycle';
import { FakeAuditKernel } from '../unit/daemon/fake-audit';

const SELF = 4242;
const AUDITD = 777;

describe('yielding the audit pid to a starting daemon', () => {
  it('does not take unicast back while the daemon is being restarted, but does after the grace period', () => {
    let now = 1_000_000;
    const k = new FakeAuditKernel();
    const lc = new AuditLifecycle({
      control: k,
      mode: 'auto',
      rules: ['-a always,exit -F arch=b64 -S execve -k credwatch:exec'],
      backlogLimit: 8192,
      logger: pino({ level: 'silent' }),
      selfPid: SELF,
      isProcessAlive: (pid) => pid === SELF,
      looksLikeCredwatch: () => false,
      now: () => now,
    });
    lc.decide();
    k.status.pid = SELF;
    lc.install();
    const refused = `audit(1732280000.123:77): op=set audit_pid=${AUDITD} old=${SELF} auid=0 ses=4294967295 subj=unconfined res=0`;
    expect(lc.daemonTakeoverAttempt(1305, refused)).toBe(AUDITD);
    lc.switchedMode('multicast', `audit daemon pid ${AUDITD} is starting`);
    expect(k.status.pid).toBe(0);
    // Polls while auditd restarts: stay in multicast.
    now += 500;
    expect(lc.modeAdvice({ pid: 0 })).toBeNull();
    now += YIELD_GRACE_MS - 1000;
    expect(lc.modeAdvice({ pid: 0 })).toBeNull();
    // auditd never came back: take the pid again rather than leave the kernel without a reader.
    now += 1000;
    expect(lc.modeAdvice({ pid: 0 })?.mode).toBe('unicast');
    lc.shutdown();
  });
});
