/**
 * Process lifecycle with a running reader, as a user's process would see it (child processes, real
 * kernel, multicast so the audit pid is never touched): an unref'd reader lets the process exit; a
 * ref'd reader keeps it alive until close(); process.exit() with the thread running does not hang.
 * Run under the lab lock.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { kernelSkipReason, reportSkip } from './kernel-lab';

const skip = kernelSkipReason();
reportSkip('netlink process exit', skip);

const ROOT = path.resolve(__dirname, '../../..');
const PRELUDE = `
const native = require(${JSON.stringify(path.join(ROOT, 'node_modules/node-gyp-build'))})(${JSON.stringify(ROOT)});
const socket = new native.AuditSocket({ mode: 'multicast', onBatch: () => {} });
socket.start();
`;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
  out: string;
}

function runChild(script: string, onSpawn?: (kill: (s: NodeJS.Signals) => void) => void, timeoutMs = 5000): Promise<Run> {
  const started = Date.now();
  const child = spawn(process.execPath, ['-e', PRELUDE + script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  onSpawn?.((s) => child.kill(s));
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, ms: Date.now() - started, out });
    }),
  );
}

describe.skipIf(skip !== null)('process exit with a running reader, real kernel', () => {
  it('exits when the script ends if the reader is unref()ed', async () => {
    const r = await runChild(`socket.unref(); console.log('end of script');`);
    expect(r.out).toContain('end of script');
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
  });

  it('exits promptly on process.exit() while the reader thread runs', async () => {
    const r = await runChild(`setTimeout(() => process.exit(3), 200);`);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(3);
    expect(r.ms).toBeLessThan(4000);
  });

  it('stays alive while the reader is ref()ed and exits on its own after close()', async () => {
    let killAt = 0;
    const r = await runChild(
      `process.on('SIGTERM', () => { socket.close(); socket.close(); console.log('closed'); });
       console.log('ready');`,
      (kill) => {
        killAt = Date.now();
        setTimeout(() => kill('SIGTERM'), 800);
      },
    );
    expect(r.out).toContain('closed');
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.ms).toBeGreaterThanOrEqual(700); // it was still running when SIGTERM came
    expect(killAt).toBeGreaterThan(0);
  });
});
