/** Running the built CLI as a user would, in a child process. Needs a build first (npm run build). */
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '../../..');
export const BIN = path.join(ROOT, 'bin', 'credwatch');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export function cli(args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const t = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, CREDWATCH_DB: '', ...env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 20_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t };
}

/** Does not block the event loop: use it when this process also serves the CLI (e.g. a collector). */
export function cliAsync(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const t = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, CREDWATCH_DB: '', ...env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr, ms: Date.now() - t });
    });
  });
}

export function builtCliExists(): boolean {
  return fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'));
}

const created = new Set<string>();

/** A private (0700) temporary directory holding db path `findings.db`. */
export function tempDb(): { dir: string; db: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-cli-'));
  created.add(dir);
  const cleanup = () => {
    fs.rmSync(dir, { recursive: true, force: true });
    created.delete(dir);
  };
  return { dir, db: path.join(dir, 'findings.db'), cleanup };
}

/** Removes temporary directories a failed test did not get to clean up (call from afterAll). */
export function cleanupTempDbs(): void {
  for (const dir of created) fs.rmSync(dir, { recursive: true, force: true });
  created.clear();
}

export function jsonLines(s: string): unknown[] {
  return s
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);
}
