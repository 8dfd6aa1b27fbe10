/**
 * The agent as users run it: `node bin/credwatch run --config FILE` in a child process, with the
 * default configuration except where its findings go (a temp database) and where metrics listen
 * (a free loopback port). Its JSON log lines are kept so tests can wait on them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '../../..');
export const CREDWATCH_BIN = path.join(REPO_ROOT, 'bin/credwatch');

export interface LogLine {
  msg?: string;
  level?: number;
  [k: string]: unknown;
}

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

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startDaemon(dir: string): Promise<RunningDaemon> {
  const dbPath = path.join(dir, 'findings.db');
  const configPath = path.join(dir, 'config.yaml');
  const port = await freeLoopbackPort();
  fs.writeFileSync(configPath, `storage:\n  path: ${dbPath}\nmetrics:\n  listen: 127.0.0.1:${port}\n`);
  const child: ChildProcess = spawn(process.execPath, [CREDWATCH_BIN, 'run', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NOTIFY_SOCKET: '' },
  });
  if (child.pid === undefined) throw new Error('credwatch run did not start');
  const logs: LogLine[] = [];
  const waiters: (() => void)[] = [];
  let stderr = '';
  let partial = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitPromise = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      for (const w of waiters.splice(0)) w();
      resolve(exit);
    });
  });
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line });
      }
    }
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));

  const waitForLog = async (pred: (l: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = logs.find(pred);
      if (hit) return hit;
      if (exit) throw new Error(`credwatch run exited (${JSON.stringify(exit)}) before ${what}; stderr: ${stderr.slice(-2000)}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last log lines: ${JSON.stringify(logs.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  };

  const pid = child.pid;
  return {
    pid,
    dbPath,
    configPath,
    logs,
    stderr: () => stderr,
    waitForLog,
    exited: () => exit !== null,
    async stop(timeoutMs = 20_000) {
      if (exit) return exit;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const r = await exitPromise;
      clearTimeout(t);
      return r;
    },
  };
}
