/**
 * The real daemon for fault tests: `node bin/credwatch run --config FILE` as a child process with a
 * config the test writes, its JSON log lines kept, plus the kernel snapshot and the gate every
 * kernel test shares (root, the addon, a build, audit not immutable).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createAuditControl } from '../../src/native/binding';
import { REPO_ROOT } from '../helpers/daemon';

export { CREDWATCH_BIN, REPO_ROOT, cli, freeLoopbackPort, sleep, startDaemon, waitUntil, type Daemon, type LogLine } from '../helpers/daemon';
export const control = createAuditControl();

/** Why kernel tests cannot run here, or null when they can. */
export function kernelSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist/src/cli/main.js'))) return 'dist/ is not built (npx tsc -p tsconfig.build.json && node scripts/copy-assets.js)';
  try {
    if (control.getStatus().enabled === 2) return 'audit is immutable (enabled=2) on this machine';
  } catch (err) {
    return `audit control unavailable: ${String(err)}`;
  }
  return null;
}

export interface KernelSnapshot {
  enabled: number;
  failure: number;
  pid: number;
  rateLimit: number;
  backlogLimit: number;
  backlogWaitTime: number;
  rules: string[];
}

/** Everything a run may change (not the moving counters); rules as raw payloads in kernel order. */
export function kernelSnapshot(): KernelSnapshot {
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

/**
 * Last resort after a failed kernel test (a SIGKILLed daemon cannot clean up): delete rules that were
 * not there before, and set back the status fields that differ. Never touches rules that were there.
 */
export function restoreKernel(before: KernelSnapshot): void {
  const keep = new Set(before.rules);
  for (const r of control.listRules()) {
    if (!keep.has(r.toString('hex'))) {
      try {
        control.deleteRule(r);
      } catch {
        // gone meanwhile
      }
    }
  }
  const now = control.getStatus();
  const change: Record<string, number> = {};
  if (now.backlogLimit !== before.backlogLimit) change.backlogLimit = before.backlogLimit;
  if (now.backlogWaitTime !== before.backlogWaitTime) change.backlogWaitTime = before.backlogWaitTime;
  if (now.rateLimit !== before.rateLimit) change.rateLimit = before.rateLimit;
  if (now.enabled !== before.enabled && now.enabled !== 2 && before.enabled < 2) change.enabled = before.enabled;
  if (Object.keys(change).length > 0) control.setStatus(change);
}

/** Rules whose key starts with `credwatch`, as auditctl -l prints them. */
export function credwatchRules(): string[] {
  const r = spawnSync('auditctl', ['-l'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.includes('credwatch'));
}

let probes = 0;

/**
 * The loopback address of the n-th probe: 127.0.0.1, 127.0.0.2, ... (all of 127/8 is the loopback
 * interface; nothing listens there, the connect() is what the rule sees).
 */
export function probeAddress(n: number): string {
  return `127.0.${Math.floor(n / 250)}.${1 + (n % 250)}`;
}

/**
 * Runs a command that fires a detection: a docker API call over TCP (h9, connect to port 2375). Each
 * call aims at its own loopback address, so each is a distinct behaviour (another endpoint) and gives a
 * finding of its own: the agent groups repeats of one behaviour into one incident (issue 17), which
 * would make probes 2..n revisions of probe 1's finding instead of new findings to count.
 */
export function triggerDockerTcp(): string {
  const addr = probeAddress(probes++);
  spawnSync('curl', ['-s', '--max-time', '2', `http://${addr}:2375/version`], { stdio: 'ignore' });
  return addr;
}
