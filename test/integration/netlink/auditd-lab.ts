/**
 * Runs Debian's auditd in the foreground as the unicast audit daemon, with a throwaway configuration
 * (no plugins, events on stderr, startup state "nochange" so it does not touch `enabled`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { getStatus } from '../../../src/native/binding';
import { waitFor } from './kernel-lab';

export function auditdAvailable(): boolean {
  return spawnSync('sh', ['-c', 'command -v auditd']).status === 0;
}

export interface AuditdConfigOptions {
  logFile: string;
  writeLogs: boolean;
  format: 'RAW' | 'ENRICHED';
}

/**
 * A throwaway auditd.conf for a test: plugins from an empty directory of ours, every disk-space action
 * IGNORE (a test must never make auditd suspend or halt the machine), a short end-of-event timeout.
 */
export function auditdConfig(dir: string, o: AuditdConfigOptions): string {
  return [
    'local_events = yes',
    `write_logs = ${o.writeLogs ? 'yes' : 'no'}`,
    `log_file = ${o.logFile}`,
    'log_group = root',
    `log_format = ${o.format}`,
    o.writeLogs ? 'flush = INCREMENTAL_ASYNC' : 'flush = NONE',
    `freq = ${o.writeLogs ? 1 : 0}`,
    'max_log_file = 1000',
    'num_logs = 1',
    'max_log_file_action = IGNORE',
    'space_left = 2',
    'space_left_action = IGNORE',
    'admin_space_left = 1',
    'admin_space_left_action = IGNORE',
    'disk_full_action = IGNORE',
    'disk_error_action = IGNORE',
    'q_depth = 2000',
    'overflow_action = IGNORE',
    `plugin_dir = ${dir}/plugins`,
    'end_of_event_timeout = 2',
    '',
  ].join('\n');
}

export interface RunningAuditd {
  pid: number;
  /** Everything auditd printed (its events go to stderr with -f). */
  output(): string;
  stop(): Promise<void>;
}

export async function startAuditd(): Promise<RunningAuditd> {
  const dir = mkdtempSync(path.join(tmpdir(), 'credwatch-auditd-'));
  mkdirSync(path.join(dir, 'plugins'));
  const conf = auditdConfig(dir, { logFile: `${dir}/audit.log`, writeLogs: false, format: 'RAW' });
  writeFileSync(path.join(dir, 'auditd.conf'), conf);
  chmodSync(path.join(dir, 'auditd.conf'), 0o600);
  const child: ChildProcess = spawn('auditd', ['-f', '-s', 'nochange', '-c', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('latin1')));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString('latin1')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid!;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const registered = await waitFor(() => getStatus().pid === pid, 5000, 50);
  if (!registered) {
    await stop();
    throw new Error(`auditd did not register as the audit daemon; it said:\n${out}`);
  }
  return { pid, output: () => out, stop };
}
