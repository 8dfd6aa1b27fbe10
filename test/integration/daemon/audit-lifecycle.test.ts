/**
 * AuditLifecycle against the real kernel and the real addon. Run under the lab's audit lock:
 *   flock /tmp/credwatch-lab.lock npx vitest run test/integration/daemon/audit-lifecycle.test.ts
 * Each test records the kernel status and the full rule list first and asserts they are exactly the
 * same at the end.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { ruleKey, rulePidField } from '../../../src/audit/rules';
import { AuditLifecycle, LIFECYCLE_STATE_KEY, SELF_RULE_KEY } from '../../../src/daemon/audit-lifecycle';
import { createAuditControl, createAuditSocket } from '../../../src/native/binding';
import type { NativeRecord } from '../../../src/native/types';

const control = createAuditControl();
const isRoot = process.getuid?.() === 0;
let addonError: string | null = null;
try {
  control.getStatus();
} catch (err) {
  addonError = String(err);
}
const canRun = isRoot && addonError === null;
if (!canRun) console.log(`skipping real-kernel lifecycle tests: ${!isRoot ? 'not root' : `addon unavailable (${addonError})`}`);
const hasAuditd = spawnSync('sh', ['-c', 'command -v auditd && command -v auditctl']).status === 0;
if (!hasAuditd) console.log('skipping the auditd coexistence test: Debian auditd is not installed (apt-get install auditd)');

const logger = pino({ level: 'silent' });
const root = path.resolve(__dirname, '../../..');
const built = fs.existsSync(path.join(root, 'dist/src/daemon/audit-lifecycle.js'));
if (canRun && !built) console.log('skipping the SIGKILL takeover test: it runs the built agent code (build dist/ first)');

/** Everything about the kernel audit state a test may change (not the moving counters). */
function snapshot(): { enabled: number; failure: number; pid: number; rateLimit: number; backlogLimit: number; backlogWaitTime: number; rules: string[] } {
  const s = control.getStatus();
  return {
    enabled: s.enabled,
    failure: s.failure,
    pid: s.pid,
    rateLimit: s.rateLimit,
    backlogLimit: s.backlogLimit,
    backlogWaitTime: s.backlogWaitTime,
    rules: control.listRules().map((r) => r.toString('hex')),
  };
}

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function syscallRecords(records: NativeRecord[], key: string): NativeRecord[] {
  return records.filter((r) => r.type === 1300 && r.text.includes(`key="${key}"`));
}

/** A private auditd configuration: logs to a temp dir, no plugins, flushes every record. */
function auditdConfigDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-auditd-'));
  fs.mkdirSync(path.join(dir, 'plugins'));
  const log = path.join(dir, 'audit.log');
  fs.writeFileSync(
    path.join(dir, 'auditd.conf'),
    [
      // auditd refuses (exit 6) a config that leaves out keys it has no default for: spell them out.
      `log_file = ${log}`,
      'local_events = yes',
      'write_logs = yes',
      'log_group = root',
      'log_format = RAW',
      'flush = DATA',
      'freq = 50',
      'max_log_file = 8',
      'num_logs = 5',
      'priority_boost = 4',
      'name_format = NONE',
      'max_log_file_action = ROTATE',
      'space_left = 75',
      'space_left_action = SYSLOG',
      'admin_space_left = 50',
      'admin_space_left_action = SUSPEND',
      'disk_full_action = SUSPEND',
      'disk_error_action = SUSPEND',
      'use_libwrap = no',
      'tcp_listen_queue = 5',
      'tcp_max_per_addr = 1',
      'tcp_client_max_idle = 0',
      'transport = TCP',
      'krb5_principal = auditd',
      'distribute_network = no',
      'q_depth = 2000',
      'overflow_action = SYSLOG',
      'max_restarts = 10',
      `plugin_dir = ${path.join(dir, 'plugins')}`,
      'end_of_event_timeout = 2',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return dir;
}

const initial = canRun ? snapshot() : null;
afterAll(() => {
  if (initial) expect(snapshot()).toEqual(initial);
});

describe.skipIf(!canRun)('AuditLifecycle on the real kernel', () => {
  it('unicast: self-exclusion first, our rule works, shutdown leaves status and rules exactly as before', async () => {
    const before = snapshot();
    if (before.pid !== 0) throw new Error(`audit pid ${before.pid} is held: this test needs the lab baseline (pid 0)`);
    const key = 'credwatch:itest-open';
    const lc = new AuditLifecycle({
      control,
      mode: 'auto',
      rules: [`-a always,exit -F arch=b64 -S openat -F success=0 -k ${key}`],
      backlogLimit: 8192,
      logger,
    });
    const plan = lc.decide();
    expect(plan).toMatchObject({ mode: 'unicast', immutable: false, holderPid: null });
    const records: NativeRecord[] = [];
    const sock = createAuditSocket({ mode: plan.mode, onBatch: (b) => records.push(...b) });
    sock.start();
    try {
      const report = lc.install();
      expect(report).toMatchObject({ installed: 2, failed: [], alreadyPresent: 0 });
      const listed = control.listRules();
      expect(ruleKey(listed[0] as Buffer)).toEqual([SELF_RULE_KEY]);
      expect(rulePidField(listed[0] as Buffer)).toBe(process.pid);
      // What we remember for removal is byte for byte what the kernel lists.
      for (const p of lc.installedPayloads()) expect(listed.some((l) => l.equals(p))).toBe(true);
      expect(control.getStatus()).toMatchObject({ pid: process.pid, enabled: 1, backlogLimit: 8192 });

      // Our own failing open is excluded; a child's is not.
      try {
        fs.openSync('/nonexistent/credwatch-itest-self', 'r');
      } catch {
        // expected: ENOENT is what the rule matches
      }
      const child = spawnSync('cat', ['/nonexistent/credwatch-itest-child']);
      expect(child.status).not.toBe(0);
      const childPid = child.pid as number;
      await waitFor('the child open record', () => syscallRecords(records, key).some((r) => r.text.includes(` pid=${childPid} `)));
      expect(syscallRecords(records, key).filter((r) => r.text.includes(` pid=${process.pid} `))).toEqual([]);
    } finally {
      const down = lc.shutdown();
      sock.close();
      expect(down.errors).toEqual([]);
      expect(down).toMatchObject({ removed: 2, missing: 0, releasedPid: true });
    }
    expect(snapshot()).toEqual(before);
  });

  it.skipIf(!built)('after an agent is SIGKILLed, the next start removes its rules, takes its dead pid and restores what it found', async () => {
    const before = snapshot();
    if (before.pid !== 0) throw new Error(`audit pid ${before.pid} is held: this test needs the lab baseline (pid 0)`);
    const child = spawn(process.execPath, [path.join(__dirname, 'fixtures/killed-agent.js'), root], { stdio: ['ignore', 'pipe', 'inherit'] });
    const childPid = child.pid as number;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const saved = new Map<string, string>();
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      for (const line of d.split('\n')) if (line.startsWith('STATE ')) saved.set(LIFECYCLE_STATE_KEY, line.slice(6));
    });
    try {
      await waitFor('the doomed agent to install its rules', () => out.includes('READY\n'));
      expect(control.getStatus()).toMatchObject({ pid: childPid, enabled: 1, backlogLimit: 320 });
      expect(control.listRules().map((r) => ruleKey(r)[0])).toEqual([SELF_RULE_KEY, 'credwatch:itest-killed']);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    // What a SIGKILL leaves: its rules, the settings it changed, and (until the kernel notices) its pid.
    expect(control.listRules()).toHaveLength(2);
    expect(control.getStatus()).toMatchObject({ enabled: 1, backlogLimit: 320 });

    const store = { get: (k: string) => saved.get(k), set: (k: string, v: string) => void saved.set(k, v) };
    const lc = new AuditLifecycle({ control, mode: 'auto', rules: ['-a always,exit -F arch=b64 -S execve -k credwatch:itest-next'], logger, state: store });
    const plan = lc.decide();
    expect(plan.mode).toBe('unicast');
    const sock = createAuditSocket({ mode: plan.mode, onBatch: () => {} });
    sock.start();
    try {
      const report = lc.install();
      expect(report.staleRemoved).toBe(2);
      expect(report.changes).toEqual([
        { field: 'backlogLimit', before: before.backlogLimit, after: 320 },
        { field: 'enabled', before: before.enabled, after: 1 },
      ]);
      expect(control.getStatus().pid).toBe(process.pid);
      expect(control.listRules().map((r) => ruleKey(r)[0])).toEqual([SELF_RULE_KEY, 'credwatch:itest-next']);
      expect(rulePidField(control.listRules()[0] as Buffer)).toBe(process.pid);
    } finally {
      expect(lc.shutdown().errors).toEqual([]);
      sock.close();
    }
    expect(snapshot()).toEqual(before);
  });

  // The unit's CapabilityBoundingSet, as setpriv(1) spells it. Root with exactly these, nothing else.
  const hasSetpriv = spawnSync('sh', ['-c', 'command -v setpriv']).status === 0;
  for (const mode of ['unicast', 'multicast'] as const) {
    it.skipIf(!built || !hasSetpriv)(`${mode}: works with only the systemd unit's capabilities (audit_control, audit_read, sys_ptrace)`, () => {
      const before = snapshot();
      const r = spawnSync(
        'setpriv',
        ['--bounding-set=-all,+audit_control,+audit_read,+sys_ptrace', '--inh-caps=-all', '--', process.execPath, path.join(__dirname, 'fixtures/lifecycle-roundtrip.js'), root, mode],
        { encoding: 'utf8' },
      );
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout) as { mode: string; installed: number; failed: unknown[]; shutdown: { errors: unknown[]; removed: number }; capEff: string };
      // CAP_AUDIT_CONTROL (30), CAP_AUDIT_READ (37), CAP_SYS_PTRACE (19), and nothing more.
      expect(BigInt(`0x${out.capEff}`)).toBe((1n << 30n) | (1n << 37n) | (1n << 19n));
      expect(out).toMatchObject({ mode, installed: 2, failed: [], shutdown: { errors: [], removed: 2 } });
      expect(snapshot()).toEqual(before);
    });
  }

  it.skipIf(!built || !hasSetpriv)('each audit capability is needed: no audit_read, no multicast; no audit_control, no status', () => {
    const before = snapshot();
    const run = (caps: string, mode: string): string =>
      spawnSync('setpriv', [`--bounding-set=-all,${caps}`, '--inh-caps=-all', '--', process.execPath, path.join(__dirname, 'fixtures/lifecycle-roundtrip.js'), root, mode], {
        encoding: 'utf8',
      }).stderr;
    expect(run('+audit_control,+sys_ptrace', 'multicast')).toContain('AuditError: bind: Operation not permitted');
    expect(run('+audit_read,+sys_ptrace', 'unicast')).toMatch(/AUDIT_GET: Operation not permitted/);
    expect(snapshot()).toEqual(before);
  });

  it.skipIf(!hasAuditd)('beside a running Debian auditd: auto picks multicast, both see the event, auditd rules untouched', async () => {
    const before = snapshot();
    const dir = auditdConfigDir();
    const log = path.join(dir, 'audit.log');
    const auditd = spawn('auditd', ['-n', '-c', dir], { stdio: 'ignore' });
    const auditdPid = auditd.pid as number;
    const exited = new Promise<void>((resolve) => auditd.once('exit', () => resolve()));
    // A different syscall from ours: on the exit list the first matching rule decides the event's key,
    // and auditd's rules come before ours (only our self-exclusion is put first).
    const foreign = ['-a', 'always,exit', '-F', 'arch=b64', '-S', 'fchmodat', '-k', 'lab-auditd-rule'];
    try {
      await waitFor('auditd to register', () => control.getStatus().pid === auditdPid);
      expect(spawnSync('auditctl', foreign).status).toBe(0);
      const auditdView = snapshot();

      const key = 'credwatch:itest-exec';
      const lc = new AuditLifecycle({ control, mode: 'auto', rules: [`-a always,exit -F arch=b64 -S execve -k ${key}`], logger });
      const plan = lc.decide();
      expect(plan).toMatchObject({ mode: 'multicast', holderPid: auditdPid });
      const records: NativeRecord[] = [];
      const sock = createAuditSocket({ mode: plan.mode, onBatch: (b) => records.push(...b) });
      sock.start();
      try {
        const report = lc.install();
        expect(report.failed).toEqual([]);
        const listed = control.listRules();
        expect(ruleKey(listed[0] as Buffer)).toEqual([SELF_RULE_KEY]);
        expect(listed.map((r) => ruleKey(r).join(','))).toContain('lab-auditd-rule');
        const child = spawnSync('/bin/true', ['credwatch-itest-marker']);
        const childPid = child.pid as number;
        await waitFor('our multicast copy', () => syscallRecords(records, key).some((r) => r.text.includes(` pid=${childPid} `)));
        await waitFor('auditd to log it', () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes(` pid=${childPid} `));
        const ours = syscallRecords(records, key).find((r) => r.text.includes(` pid=${childPid} `)) as NativeRecord;
        const eventId = /audit\(([0-9.:]+)\)/.exec(ours.text)?.[1] as string;
        expect(fs.readFileSync(log, 'utf8')).toContain(`msg=audit(${eventId})`);
        expect(control.getStatus().pid).toBe(auditdPid);
      } finally {
        const down = lc.shutdown();
        sock.close();
        expect(down.errors).toEqual([]);
        expect(down.releasedPid).toBe(false);
      }
      expect(snapshot()).toEqual(auditdView);
    } finally {
      auditd.kill('SIGTERM');
      await exited;
      spawnSync('auditctl', ['-d', ...foreign.slice(1)]);
      // auditd leaves audit enabled when it exits; put back what the machine had.
      const s = control.getStatus();
      if (s.enabled !== before.enabled && before.enabled < 2) control.setStatus({ enabled: before.enabled as 0 | 1 });
      if (s.pid !== before.pid && before.pid === 0) control.setStatus({ pid: 0 });
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(snapshot()).toEqual(before);
  });

  it.skipIf(!hasAuditd)('auditd starting while we hold unicast: we see its refused attempt, yield to multicast, and its next start works', async () => {
    const before = snapshot();
    const dir = auditdConfigDir();
    const lc = new AuditLifecycle({ control, mode: 'auto', rules: ['-a always,exit -F arch=b64 -S execve -k credwatch:itest-yield'], logger });
    expect(lc.decide().mode).toBe('unicast');
    const records: NativeRecord[] = [];
    let sock = createAuditSocket({ mode: 'unicast', onBatch: (b) => records.push(...b) });
    sock.start();
    let auditdPid: number | null = null;
    let auditdExited: Promise<void> | null = null;
    try {
      lc.install();
      // First start of auditd: the kernel refuses it (EEXIST) and tells us so in a CONFIG_CHANGE record.
      const first = spawnSync('auditd', ['-n', '-c', dir], { timeout: 10_000 });
      expect(first.status).not.toBe(0);
      let attempted: number | null = null;
      await waitFor('the refused AUDIT_SET pid record', () => {
        for (const r of records) attempted ??= lc.daemonTakeoverAttempt(r.type, r.text);
        return attempted !== null;
      });
      expect(attempted).toBe(first.pid);

      // Yield: reopen the reader in multicast, then release the pid.
      const multicast = createAuditSocket({ mode: 'multicast', onBatch: (b) => records.push(...b) });
      multicast.start();
      sock.close();
      sock = multicast;
      lc.switchedMode('multicast', `pid ${String(attempted)} wants the audit socket`);
      expect(control.getStatus().pid).toBe(0);

      const auditd = spawn('auditd', ['-n', '-c', dir], { stdio: 'ignore' });
      auditdPid = auditd.pid as number;
      auditdExited = new Promise<void>((resolve) => auditd.once('exit', () => resolve()));
      await waitFor('auditd to register', () => control.getStatus().pid === auditdPid);
      expect(lc.modeAdvice({ pid: auditdPid })).toBeNull();
      const child = spawnSync('/bin/true');
      await waitFor('our multicast copy', () => syscallRecords(records, 'credwatch:itest-yield').some((r) => r.text.includes(` pid=${child.pid as number} `)));
    } finally {
      expect(lc.shutdown().errors).toEqual([]);
      sock.close();
      if (auditdPid !== null) {
        process.kill(auditdPid, 'SIGTERM');
        await auditdExited;
      }
      const s = control.getStatus();
      if (s.enabled !== before.enabled && before.enabled < 2) control.setStatus({ enabled: before.enabled as 0 | 1 });
      if (s.pid !== before.pid && before.pid === 0) control.setStatus({ pid: 0 });
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(snapshot()).toEqual(before);
  });
});
