/**
 * The agent as users run it, for tests: `node bin/credwatch run --config FILE` as a child process,
 * ready once it logs "credwatch running", its JSON log lines kept (parsed, and raw for the tests that
 * check they are valid JSON), stopped by a signal with a SIGKILL fallback. Shared by the daemon,
 * reliability and e2e suites.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '../..');
export const CREDWATCH_BIN = path.join(REPO_ROOT, 'bin/credwatch');

export interface LogLine {
  msg?: string;
  level?: number;
  [k: string]: unknown;
}

export interface Daemon {
  proc: ChildProcess;
  pid: number;
  logs: LogLine[];
  /** Every stdout line as written (the JSON-validity tests read these). */
  rawLines: string[];
  stderr(): string;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine>;
  /** Resolves with the exit code and signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
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

/**
 * Starts the daemon and waits for its 'credwatch running' line. `command` replaces
 * `node bin/credwatch run --config FILE` (e.g. `docker run ... IMAGE run --config FILE`): it must
 * pass SIGTERM on to the agent and its stdout through.
 */
export async function startDaemon(configPath: string, env: NodeJS.ProcessEnv = {}, readyMs = 20_000, command?: string[]): Promise<Daemon> {
  const [cmd, ...args] = command ?? [process.execPath, CREDWATCH_BIN, 'run', '--config', configPath];
  const proc = spawn(cmd!, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NOTIFY_SOCKET: '', ...env },
  });
  if (proc.pid === undefined) throw new Error('credwatch run did not start');
  const logs: LogLine[] = [];
  const rawLines: string[] = [];
  let stderr = '';
  let partial = '';
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
  });
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (chunk: string) => {
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      rawLines.push(line);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: `(not JSON) ${line}` });
      }
    }
  });
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (c: string) => (stderr += c));
  const d: Daemon = {
    proc,
    pid: proc.pid,
    logs,
    rawLines,
    stderr: () => stderr,
    exited,
    hasExited: () => done,
    async waitForLog(pred, timeoutMs, what) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const hit = logs.find(pred);
        if (hit) return hit;
        if (done) throw new Error(`daemon exited while waiting for ${what}; stderr: ${stderr.slice(-2000)}; last logs: ${JSON.stringify(logs.slice(-5))}`);
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}; last logs: ${JSON.stringify(logs.slice(-5))}`);
        await sleep(50);
      }
    },
    async stop(signal = 'SIGTERM', timeoutMs = 20_000) {
      if (!done) proc.kill(signal);
      const t = setTimeout(() => !done && proc.kill('SIGKILL'), timeoutMs);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
  await d.waitForLog((l) => l.msg === 'credwatch running', readyMs, 'credwatch running');
  return d;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000, stepMs = 100): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** `credwatch <args>` synchronously; stdout, stderr and status. */
export function cli(args: string[], timeoutMs = 30_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CREDWATCH_BIN, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
