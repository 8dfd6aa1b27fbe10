/**
 * Coexistence with Debian's auditd while the real daemon runs in auto mode (issue 11): auditd running
 * (credwatch reads multicast), then stopped (credwatch takes unicast), then started again (its first
 * registration is refused because credwatch holds the audit pid; credwatch sees that and yields to
 * multicast; auditd's next start registers). In every phase a probe lands as a finding, and auditd's
 * own rules (loaded with auditctl -R from a rules file with their own key) are exactly as loaded.
 * At the end the kernel is as before. Run under the lab lock:
 *   flock /tmp/credwatch-lab.lock npx vitest run test/reliability/auditd-coexistence.test.ts
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { auditdAvailable, startAuditd, type RunningAuditd } from '../integration/netlink/auditd-lab';
import { cli, control, freeLoopbackPort, kernelSkipReason, kernelSnapshot, restoreKernel, sleep, startDaemon, triggerDockerTcp, waitUntil, type Daemon } from './daemon';

const skip = kernelSkipReason() ?? (!auditdAvailable() || spawnSync('sh', ['-c', 'command -v auditctl']).status !== 0 ? 'Debian auditd/auditctl not installed (apt-get install auditd)' : null);
if (skip) console.log(`skipping the auditd coexistence test: ${skip}`);

const AUDITD_KEY = 'auditd-own-rules';
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function auditdRules(): string[] {
  return spawnSync('auditctl', ['-l'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes(AUDITD_KEY));
}

function findingCount(db: string): number {
  const r = cli(['findings', '--db', db, '--json', '--limit', '0']);
  return r.stdout.split('\n').filter((l) => l !== '').length;
}

async function probeLands(db: string, phase: string): Promise<void> {
  const n = findingCount(db);
  triggerDockerTcp();
  await waitUntil(`a finding while ${phase}`, () => findingCount(db) > n, 20_000, 300);
}

describe('auditd started, stopped and started again while credwatch runs (auto mode)', () => {
  it.skipIf(skip !== null)('keeps detecting in every phase, switching modes, and never touches auditd rules', async () => {
    const before = kernelSnapshot();
    cleanup.push(() => restoreKernel(before));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credwatch-coexist-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const rulesFile = path.join(dir, 'auditd.rules');
    fs.writeFileSync(rulesFile, `-a always,exit -F arch=b64 -S unlinkat -F dir=/tmp/${AUDITD_KEY} -k ${AUDITD_KEY}\n-w /etc/hosts -p wa -k ${AUDITD_KEY}\n`);
    let auditd: RunningAuditd | null = await startAuditd();
    cleanup.push(async () => {
      if (auditd) await auditd.stop();
    });
    fs.mkdirSync(`/tmp/${AUDITD_KEY}`, { recursive: true });
    cleanup.push(() => fs.rmSync(`/tmp/${AUDITD_KEY}`, { recursive: true, force: true }));
    expect(spawnSync('auditctl', ['-R', rulesFile]).status).toBe(0);
    cleanup.push(() => {
      for (const line of auditdRules()) spawnSync('sh', ['-c', `auditctl ${line.replace(/^-a /, '-d ').replace(/^-w /, '-W ')}`]);
    });
    const theirs = auditdRules();
    expect(theirs.length).toBe(2);

    const db = path.join(dir, 'findings.db');
    const cfg = path.join(dir, 'config.yaml');
    fs.writeFileSync(cfg, `storage:\n  path: ${db}\nmetrics:\n  listen: 127.0.0.1:${await freeLoopbackPort()}\naudit:\n  mode: auto\n`, { mode: 0o600 });
    const d: Daemon = await startDaemon(cfg);
    cleanup.push(async () => {
      if (!d.hasExited()) await d.stop('SIGTERM');
    });

    // Phase 1: auditd holds the audit pid: multicast.
    const running = d.logs.find((l) => l.msg === 'credwatch running');
    expect(running?.mode).toBe('multicast');
    await probeLands(db, 'auditd runs');
    expect(auditdRules()).toEqual(theirs);
    expect(control.getStatus().pid).toBe(auditd.pid);

    // Phase 2: auditd stops: credwatch takes the audit pid (unicast).
    await auditd.stop();
    auditd = null;
    await d.waitForLog((l) => l.msg === 'audit read mode switched' && l.to === 'unicast', 20_000, 'switch to unicast');
    await waitUntil('credwatch holds the audit pid', () => control.getStatus().pid === d.pid, 10_000);
    await probeLands(db, 'auditd is stopped');
    expect(auditdRules()).toEqual(theirs);

    // Phase 3: auditd starts again. Its first registration is refused; credwatch yields; it starts.
    let attempts = 0;
    while (auditd === null && attempts < 5) {
      attempts++;
      try {
        auditd = await startAuditd();
      } catch {
        await sleep(1000);
      }
    }
    expect(auditd, `auditd never registered; daemon said: ${JSON.stringify(d.logs.slice(-8))}`).not.toBeNull();
    await d.waitForLog((l) => l.msg === 'audit read mode switched' && l.to === 'multicast', 20_000, 'switch back to multicast');
    await probeLands(db, 'auditd runs again');
    expect(auditdRules()).toEqual(theirs);
    expect(control.getStatus().pid).toBe(auditd?.pid);
    console.log(`coexistence: auditd registered again after ${attempts} start(s)`);

    const r = await d.stop('SIGTERM');
    expect(r.code).toBe(0);
    // credwatch's rules are gone, auditd's are untouched.
    expect(spawnSync('auditctl', ['-l'], { encoding: 'utf8' }).stdout).not.toContain('credwatch');
    expect(auditdRules()).toEqual(theirs);
  }, 180_000);
});
