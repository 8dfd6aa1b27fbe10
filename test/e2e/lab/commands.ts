/**
 * Runs the lab's tools (kubectl, docker, curl, etcdctl...) as child processes WITHOUT blocking the
 * event loop: the API-server and kubelet stubs live in this same process, so a spawnSync would
 * leave kubectl or curl waiting on a server that cannot answer.
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** pid of the started process (its exec is what the agent sees). */
  pid: number | null;
}

export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
  cwd?: string;
}

export function run(cmd: string, args: string[], opts: CommandOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, pid: child.pid ?? null });
    });
    if (child.stdin) {
      // A tool that exits without reading its input must not fail the test with EPIPE.
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input);
    }
  });
}

/** Like run(), but a non-zero exit is an error carrying stderr. */
export async function runOk(cmd: string, args: string[], opts: CommandOptions = {}): Promise<CommandResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r;
}
