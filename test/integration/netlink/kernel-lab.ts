/**
 * Shared helpers for tests against the real kernel audit subsystem. These tests change global kernel
 * state, so run them under the lab lock: `flock /tmp/credwatch-lab.lock npx vitest run test/integration/netlink`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, expect } from 'vitest';

import type { RawRecord } from '../../../src/audit/event';
import { encodeRule } from '../../../src/audit/rules';
import { AuditLifecycle } from '../../../src/daemon/audit-lifecycle';
import { createAuditControl, listRules, getStatus, deleteRule, loadNative } from '../../../src/native/binding';
import type { AuditStatus } from '../../../src/native/types';

export const TEST_KEY = 'credwatch:test';

/** Why the kernel tests cannot run here, or null when they can. */
export function kernelSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (CAP_AUDIT_CONTROL, CAP_AUDIT_READ)';
  try {
    loadNative();
  } catch (err) {
    return `native addon not built (npx node-gyp rebuild): ${(err as Error).message}`;
  }
  try {
    getStatus();
  } catch (err) {
    return `audit netlink socket unusable: ${(err as Error).message}`;
  }
  return null;
}

export function reportSkip(suite: string, reason: string | null): void {
  if (reason !== null) console.warn(`[skip] ${suite}: ${reason}`);
}

/** `-a always,exit -F arch=b64 -S <name> -k <key>` in auditctl syntax. */
export function exitRuleText(syscall: 'execve' | 'getppid', key: string = TEST_KEY): string {
  return `-a always,exit -F arch=b64 -S ${syscall} -k ${key}`;
}

/** The rule payload for exitRuleText(), from the project's encoder. */
export async function exitRule(syscall: 'execve' | 'getppid', key: string = TEST_KEY): Promise<Buffer> {
  return encodeRule(exitRuleText(syscall, key));
}

/**
 * The agent's owner of kernel audit changes (src/daemon/audit-lifecycle.ts), for tests that need rules,
 * enabled=1 or a backlog limit while a NetlinkSource reads: the reader only reads. Its mode decided;
 * call install() after opening the reader and shutdown() before closing it, as the agent does.
 */
export function labLifecycle(mode: 'unicast' | 'multicast', rules: string[], opts: { backlogLimit?: number } = {}): AuditLifecycle {
  const lifecycle = new AuditLifecycle({ control: createAuditControl(), mode, rules, logger: pino({ level: 'silent' }), ...opts });
  lifecycle.decide();
  return lifecycle;
}

export interface KernelSnapshot {
  status: AuditStatus;
  rules: string[];
}

/** What a test must leave exactly as it found: status fields we may touch and the full rule list. */
export function snapshot(): KernelSnapshot {
  return { status: getStatus(), rules: listRules().map((r) => r.toString('hex')) };
}

export function comparableStatus(s: AuditStatus): Pick<AuditStatus, 'enabled' | 'failure' | 'pid' | 'rateLimit' | 'backlogLimit' | 'backlogWaitTime'> {
  return {
    enabled: s.enabled,
    failure: s.failure,
    pid: s.pid,
    rateLimit: s.rateLimit,
    backlogLimit: s.backlogLimit,
    backlogWaitTime: s.backlogWaitTime,
  };
}

/** Last-resort cleanup: deletes any rule carrying our test key and puts status fields back. */
export function restoreKernel(before: KernelSnapshot): void {
  for (const rule of listRules()) {
    if (rule.includes(Buffer.from(TEST_KEY)) && !before.rules.includes(rule.toString('hex'))) {
      try {
        deleteRule(rule);
      } catch {
        // already gone
      }
    }
  }
  const now = getStatus();
  const b = before.status;
  if (now.pid !== b.pid && now.pid === process.pid) loadNative().setStatus({ pid: 0 });
  if (now.backlogLimit !== b.backlogLimit) loadNative().setStatus({ backlogLimit: b.backlogLimit });
  if (now.backlogWaitTime !== b.backlogWaitTime) loadNative().setStatus({ backlogWaitTime: b.backlogWaitTime });
  if (now.enabled !== b.enabled && b.enabled < 2 && now.enabled < 2) loadNative().setStatus({ enabled: b.enabled as 0 | 1 });
}

/**
 * Call inside a describe: snapshots the kernel's audit state before the suite and, after it, puts back
 * whatever a failed test left behind. `before` is readable from the tests once the suite runs.
 */
export function kernelBaseline(): { readonly before: KernelSnapshot } {
  const box = {} as { before: KernelSnapshot };
  beforeAll(() => {
    box.before = snapshot();
  });
  afterAll(() => {
    restoreKernel(box.before);
  });
  return box;
}

/** The kernel's audit status fields and rule list are exactly as in `before`. */
export function expectKernelAsFound(before: KernelSnapshot): void {
  const after = snapshot();
  expect(comparableStatus(after.status)).toEqual(comparableStatus(before.status));
  expect(after.rules).toEqual(before.rules);
}

export function probeToken(): string {
  return `credwatch-probe-${randomBytes(6).toString('hex')}`;
}

/** Execs `/bin/echo <token> "two words"` as a child process and waits for it. */
export function execProbe(token: string): void {
  execFileSync('/bin/echo', [token, 'two words'], { stdio: 'ignore' });
}

export function hex(s: string): string {
  return Buffer.from(s, 'utf8').toString('hex').toUpperCase();
}

/** The audit(...) event id of a record text. */
export function eventId(text: string): string | null {
  const m = /^audit\((\d+\.\d+:\d+)\)/.exec(text);
  return m ? m[1]! : null;
}

/**
 * Records of the probe's execve event: finds the EXECVE naming the token, then every record with the
 * same event id.
 */
export function probeEvent(records: RawRecord[], token: string): RawRecord[] {
  const execve = records.find((r) => r.type === 1309 && r.text.includes(`"${token}"`));
  if (!execve) return [];
  const id = eventId(execve.text);
  return records.filter((r) => eventId(r.text) === id);
}

export async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}

export function pythonAvailable(): boolean {
  return spawnSync('python3', ['-c', 'pass']).status === 0;
}
