/**
 * The agent as users run it, for the attack lab: the default configuration except where its findings
 * go (a temp database) and where metrics listen (a free loopback port). Process handling is the
 * shared test/helpers/daemon.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freeLoopbackPort, startDaemon as startConfigured, type LogLine } from '../../helpers/daemon';

export { CREDWATCH_BIN, REPO_ROOT, freeLoopbackPort, type LogLine } from '../../helpers/daemon';

export interface RunningDaemon {
  pid: number;
  dbPath: string;
  configPath: string;
  logs: LogLine[];
  /** Raw stderr (anything not JSON, e.g. a crash). */
  stderr(): string;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine>;
  /** SIGTERM and wait; resolves with the exit code (null if killed by a signal). */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited(): boolean;
}

export async function startDaemon(dir: string): Promise<RunningDaemon> {
  const dbPath = path.join(dir, 'findings.db');
  const configPath = path.join(dir, 'config.yaml');
  const port = await freeLoopbackPort();
  fs.writeFileSync(configPath, `storage:\n  path: ${dbPath}\nmetrics:\n  listen: 127.0.0.1:${port}\n`);
  const d = await startConfigured(configPath, {}, 30_000);
  return {
    pid: d.pid,
    dbPath,
    configPath,
    logs: d.logs,
    stderr: d.stderr,
    waitForLog: d.waitForLog,
    exited: d.hasExited,
    stop: (timeoutMs) => d.stop('SIGTERM', timeoutMs),
  };
}
